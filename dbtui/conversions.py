"""The wizard's work that runs in a thread of Textual's executor and writes where the user looks: the Model step's
conversions and the dashboard's exports. Python waits for them at exit, and they cannot be stopped. Ctrl+Q says which
go on; a Ctrl-C then abandons them, their partial folders removed here (their own cleanup runs in that thread, which
the process no longer waits for)."""

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

    def said(self) -> str:
        return f"the conversion into {self.into}"

    def own_partials(self) -> list[Path]:
        """This process's temporaries of the write (another process's, writing the same folder, are left to it)."""
        from engine.convert.partials import partials_of, writer_tag

        into = self.into.expanduser()
        return [path for path in partials_of(into) if path.name.startswith(f".{into.name}.{writer_tag()}.")]


class Export(Conversion):
    """The dashboard's export of a run's step (``source``: "step N") into its RUN/exports/step-N folder, whose
    temporaries (its work folder, a folder output's) are inside that folder."""

    def said(self) -> str:
        return f"the export of {self.source} into {self.into}"

    def own_partials(self) -> list[Path]:
        from engine.convert.partials import writer_tag

        return sorted(self.into.glob(f".*.{writer_tag()}.*.partial"))


def still_running(conversions: list[Conversion]) -> list[Conversion]:
    return [conversion for conversion in conversions if not conversion.done.is_set()]


def finishing_words(running: list[Conversion]) -> str:
    """What the shell is told when the app quits while ``running`` write: the process waits for them."""
    said = ", ".join(conversion.said() for conversion in running)
    return f"Finishing {said}… (Ctrl-C to abandon it; its partial folder is removed)"


def abandon(running: list[Conversion]) -> None:
    """Remove this process's partial folders of the ``running`` writes, saying so; the caller then leaves at once, not
    waiting for their threads."""
    for conversion in running:
        for path in conversion.own_partials():
            shutil.rmtree(path, ignore_errors=True)
        print(f"dbtui: abandoned {conversion.said()}; its partial folder is removed", file=sys.stderr)
