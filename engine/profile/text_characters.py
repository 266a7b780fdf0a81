"""The characters no caption or prompt may hold: NUL and the other control characters (ESC starts a terminal's
escape sequences), which no one types in a caption and which would drive the terminal that prints the text.
Captions (``engine.data.caption_text``) and the profile's prompts and paths (``engine.profile.fields``; a path allows
no white space of that kind either) share this check; and a prompt that shows nothing (``blank``) is an empty one."""

from __future__ import annotations

import unicodedata

_WHITE_SPACE = "\t\n\r"  # the white space of a text file, read as spaces in a caption or prompt

_HIDDEN = ("Cc", "Cf", "Cs")  # control, format (invisible or reordering) and lone surrogates (undecodable bytes)

_NAMES = {"\x00": "NUL (U+0000)", "\x1b": "ESC (U+001B)", "\n": "a line break (\\n)", "\t": "a tab (\\t)",
          "\r": "a carriage return (\\r)", "\b": "a backspace (\\b)", "\f": "a form feed (\\f)"}


def control_character(text: str, allowed: str = _WHITE_SPACE) -> str | None:
    """How to name the first control character of ``text`` not in ``allowed`` (e.g. "ESC (U+001B)", "a tab (\\t)");
    None when it holds none. A path allows none: ``allowed=""``."""
    for character in text:
        if unicodedata.category(character) == "Cc" and character not in allowed:
            return _NAMES.get(character, f"a control character (U+{ord(character):04X})")
    return None


def printable(text: str) -> str:
    """``text`` with each control character written as its escape (ESC as \\x1b), to echo a refused value safely.
    Format characters (a zero-width space, a right-to-left override) and undecodable bytes are escaped too, as the
    dataset check shows file names: left as they are, a name looked like another, or was printed backwards."""
    return "".join(character.encode("unicode_escape").decode("ascii") if unicodedata.category(character) in _HIDDEN
                   else character for character in text)


def blank(text: str) -> bool:
    """True when ``text`` shows nothing: white space and invisible format characters (a zero-width space or a BOM
    pasted from a web page) only, which a tokenizer reads as no word at all."""
    return not "".join(character for character in text if unicodedata.category(character) != "Cf").strip()
