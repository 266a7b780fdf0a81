"""The Model step's conversions, which run in a thread of Textual's executor: Python waits for it at exit, and it
cannot be stopped. Ctrl+Q says which conversions go on; a Ctrl-C then abandons them, their partial folders removed
here (their own cleanup runs in that thread, which the process no longer waits for)."""

from __future__ import annotations

import shutil
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Conversion:
    """A file being converted into the folder ``into``; ``done`` is set once its thread has ended, however."""

    source: str
    into: Path
    done: threading.Event = field(default_factory=threading.Event)


def still_running(conversions: list[Conversion]) -> list[Conversion]:
    return [conversion for conversion in conversions if not conversion.done.is_set()]


def finishing_words(running: list[Conversion]) -> str:
    """What the shell is told when the app quits while ``running`` convert: the process waits for them."""
    folders = ", ".join(str(conversion.into) for conversion in running)
    return f"Finishing the conversion into {folders}… (Ctrl-C to abandon it; its partial folder is removed)"


def abandon(running: list[Conversion]) -> None:
    """Remove this process's partial folders of the ``running`` conversions (another process's, converting to the same
    folder, are left to it), saying so; the caller then leaves at once, not waiting for their threads."""
    from engine.convert.partials import partials_of, writer_tag

    for conversion in running:
        into = conversion.into.expanduser()
        for path in partials_of(into):
            if path.name.startswith(f".{into.name}.{writer_tag()}."):
                shutil.rmtree(path, ignore_errors=True)
        print(f"dbtui: abandoned the conversion into {conversion.into}; its partial folder is removed", file=sys.stderr)
