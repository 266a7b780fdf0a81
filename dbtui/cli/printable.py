"""Text from the user's disk (file names above all) made safe to print on a terminal with Rich.

A file name may hold bytes that are not UTF-8 (Python keeps them as lone surrogates, which
no UTF-8 stream can encode), terminal control characters or bidi overrides, or square
brackets that Rich would read as markup. Each is shown as an escape instead of crashing the
print or steering the terminal.
"""

from __future__ import annotations

import unicodedata


def printable(text: object) -> str:
    """``text`` on one line, with undecodable bytes and control or format characters as escapes (``\\udce9``)."""
    return "".join(
        char if unicodedata.category(char) not in ("Cc", "Cf", "Cs") else
        f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"
        for char in str(text)
    )


def markup_safe(text: object) -> str:
    """``printable(text)`` with Rich markup escaped, for cells and f-strings printed with markup on."""
    from rich.markup import escape  # imported here: `dbtui --help` builds this module's parser without Rich

    return escape(printable(text))
