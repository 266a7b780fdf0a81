"""Rich output without the trailing spaces its tables and wrapped lines pad each line with, where the output is no
terminal: a script that greps or diffs `dbtui hardware > file` or `dbtui dataset check DIR > file` saw them."""

from __future__ import annotations

from typing import Any, TextIO


class _LinesUnpadded:
    """A text stream over ``out`` writing each whole line without its trailing spaces, as it comes: progress printed
    to ``out`` between two of the console's prints keeps its place."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.tail = ""  # the line begun and not yet ended

    @property
    def encoding(self) -> str:  # Rich draws its boxes in what the output can encode
        return getattr(self.out, "encoding", None) or "utf-8"

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        *lines, self.tail = (self.tail + text).split("\n")
        self.out.writelines(f"{line.rstrip()}\n" for line in lines)
        return len(text)

    def flush(self) -> None:
        if self.tail:  # printed with end="": said now, as asked
            self.out.write(self.tail)
            self.tail = ""
        self.out.flush()


def unpadded_console(**options: Any) -> Any:
    """A Rich console (dbtui.console.make_console) whose lines lose their trailing spaces where it is no terminal; on a
    terminal, as drawn."""
    from dbtui.console import make_console

    console = make_console(**options)
    if not console.is_terminal:
        console.file = _LinesUnpadded(console.file)
    return console
