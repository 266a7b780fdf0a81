"""Profile bytes → text: TOML is UTF-8, so anything else is refused with a way to fix it."""

from __future__ import annotations

import codecs
from pathlib import Path

from engine.profile.problems import Problem, ProfileError

_SAVE_AS_UTF8 = "open it in a text editor and save it as UTF-8"
_WIDE_MARKS = (  # UTF-32 first: its little-endian mark begins with UTF-16's
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)


def decode_profile(raw: bytes, file: Path | None = None) -> str:
    """The text of a profile file; a UTF-8 byte-order mark (Windows editors write one) is dropped.
    NUL characters are refused later, by ``strip_text``, which every profile text goes through."""
    encoding = next((name for mark, name in _WIDE_MARKS if raw.startswith(mark)), None)
    if encoding:
        raise _not_text(f"the file is saved as {encoding}, not UTF-8; {_SAVE_AS_UTF8}", None, file)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise _not_text(
            f"the file is not UTF-8 text (byte {error.start + 1} is not valid UTF-8): it is binary, or text saved "
            f"in another encoding such as Latin-1 or Windows-1252; {_SAVE_AS_UTF8}",
            line,
            file,
        ) from None
    return text


def strip_text(text: str, file: Path | None = None) -> str:
    """Text with a leading BOM dropped; NUL characters (binary data, or UTF-16/UTF-32 without a BOM) refused."""
    text = text.removeprefix("\ufeff")
    nul = text.find("\x00")
    if nul >= 0:
        raise _not_text(
            f"the file contains NUL bytes: it is binary, or text saved as {_wide_encoding(text)}; {_SAVE_AS_UTF8}",
            text.count("\n", 0, nul) + 1,
            file,
        )
    return text


def _wide_encoding(text: str) -> str:
    """The encoding a BOM-less text read as UTF-8 seems to be in: in UTF-32 an ASCII character comes with three NULs
    (before or after it), in UTF-16 with one."""
    if "\x00\x00\x00" in text[:4]:
        return "UTF-32"
    return "UTF-16"


def _not_text(message: str, line: int | None, file: Path | None) -> ProfileError:
    return ProfileError([Problem("", message, line, None, file)])
