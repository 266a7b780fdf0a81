"""The characters no caption or prompt may hold: NUL and the other control characters (ESC starts a terminal's
escape sequences), which no one types in a caption and which would drive the terminal that prints the text.
Captions (``engine.data.caption_text``) and the profile's prompts (``engine.profile.fields``) share this check;
and a prompt that shows nothing (``blank``) is an empty one."""

from __future__ import annotations

import unicodedata

_ALLOWED = "\t\n\r"  # the white space of a text file, read as spaces


def control_character(text: str) -> str | None:
    """How to name the first control character of ``text`` (e.g. "ESC (U+001B)"); None when it holds none."""
    for character in text:
        if unicodedata.category(character) == "Cc" and character not in _ALLOWED:
            name = "NUL" if character == "\x00" else "ESC" if character == "\x1b" else "a control character"
            return f"{name} (U+{ord(character):04X})"
    return None


def printable(text: str) -> str:
    """``text`` with each control character written as its escape (ESC as \\x1b), to echo a refused value safely."""
    return "".join(character.encode("unicode_escape").decode("ascii") if unicodedata.category(character) == "Cc"
                   else character for character in text)


def blank(text: str) -> bool:
    """True when ``text`` shows nothing: white space and invisible format characters (a zero-width space or a BOM
    pasted from a web page) only, which a tokenizer reads as no word at all."""
    return not "".join(character for character in text if unicodedata.category(character) != "Cf").strip()
