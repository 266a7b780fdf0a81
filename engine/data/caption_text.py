"""Read a caption file's text, the one way every part of dbtui reads captions.

UTF-8 (with or without a byte-order mark) and UTF-16/UTF-32 with a byte-order mark are read.
Anything else is refused with a message naming the file, never guessed: decoding Latin-1 or
Windows-1252 "just in case" would train on mojibake without anyone noticing.
"""

from __future__ import annotations

import codecs
import os
import stat
from pathlib import Path

from engine.data.images import DataError
from engine.profile.text_characters import blank, control_character
from engine.support.folder_access import read_fix

# CLIP reads 77 tokens (about 300 characters); a file this big is not a caption, and tokenizing
# it would only waste time before the text encoder cuts it anyway.
MAX_CAPTION_BYTES = 64 * 1024
_BOMS = (  # UTF-32 first: its little-endian mark begins with UTF-16's
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_SAVE_AS_UTF8 = "open it in a text editor and save it as UTF-8"


class CaptionFileError(DataError):
    """A caption file that is not readable text: wrong encoding, binary, too big, or not a file."""


def read_caption_file(path: Path | str) -> str | None:
    """The decoded text of a caption file (not stripped), or None when there is no such file."""
    path = Path(path)
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            # Opening a named pipe would wait forever for a writer; a folder cannot be read.
            raise CaptionFileError(f"caption file '{path}' is not a regular file; replace it with a text file")
        with open(path, "rb") as file:
            data = file.read(MAX_CAPTION_BYTES + 1)
    except FileNotFoundError:
        return None
    except PermissionError as error:  # a copy of it cannot read it either: the chmod, or whose it is
        raise CaptionFileError(f"caption file '{path}' cannot be read ({error.strerror}); {read_fix(path)}") from None
    except OSError as error:
        raise CaptionFileError(
            f"caption file '{path}' cannot be read ({error.strerror or error}); check its permissions or copy it again"
        ) from None
    if len(data) > MAX_CAPTION_BYTES:
        raise CaptionFileError(
            f"caption file '{path}' is over {MAX_CAPTION_BYTES // 1024} KiB, far more than a caption can use "
            "(the text encoder reads 77 tokens, about 300 characters): shorten it"
        )
    return _decode(path, data)


def _decode(path: Path, data: bytes) -> str:
    encoding = next((name for bom, name in _BOMS if data.startswith(bom)), "utf-8")
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as error:
        if encoding == "utf-8":
            raise CaptionFileError(
                f"caption file '{path}' is not UTF-8 text (byte {error.start + 1} is not valid UTF-8; it may be "
                f"Latin-1/Windows-1252, or UTF-16 without a byte-order mark): {_SAVE_AS_UTF8}"
            ) from None
        raise CaptionFileError(
            f"caption file '{path}' starts like {encoding.upper()} but is not: {_SAVE_AS_UTF8}"
        ) from None
    if "\x00" in text:
        raise CaptionFileError(
            f"caption file '{path}' contains NUL characters (a binary file, or UTF-16 without a byte-order mark): "
            f"{_SAVE_AS_UTF8}"
        )
    character = control_character(text)
    if character:
        raise CaptionFileError(f"caption file '{path}' holds {character}, which is no text a model reads and would "
                               "drive the terminal that prints it: remove it in a text editor")
    return text


def caption_words(text: str | None) -> str:
    """A caption file's text as training reads it: stripped, and "" where it shows nothing (white space, or a BOM or
    zero-width space alone, as a file saved with its byte-order mark twice holds), which trains with no prompt."""
    return "" if text is None or blank(text) else text.strip()


def read_caption(path: Path, root: Path) -> str | None:
    """``read_caption_file`` for a caption of the dataset folder ``root``: a link leading out of it is not followed,
    so training, the doctor and prepare all read only what the folder holds."""
    if not Path(os.path.realpath(path)).is_relative_to(os.path.realpath(root)):
        raise CaptionFileError(f"caption file '{path}' is a symbolic link to a file outside the dataset folder, "
                               "which dbtui does not follow: copy the caption into the folder")
    return read_caption_file(path)
