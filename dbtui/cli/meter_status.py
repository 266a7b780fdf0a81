"""While the memory meter works (a few seconds each part, half a minute in all for SDXL on 2 cores): on a terminal, a
spinner on stderr with the part under way and the seconds so far; elsewhere nothing beyond the line said before it."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def meter_status(what: str) -> Iterator[Callable[[str], None] | None]:
    """A ``measuring(part)`` for ``estimate_peak`` that shows ``what: part …`` live on stderr where it is a terminal, and
    takes the line away when the estimate is made or fails; None elsewhere (a log, a pipe, CI), where every frame of a
    live line would be written."""
    from dbtui.console import make_console, want_plain

    if want_plain(stream=sys.stderr):
        yield None
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (SpinnerColumn(), TextColumn("{task.description}", markup=False), TimeElapsedColumn())
    with Progress(*columns, console=make_console(stderr=True), transient=True) as shown:
        task = shown.add_task(f"{what} …", total=None)
        yield lambda part: shown.update(task, description=f"{what}: {part} …", refresh=True)
