"""Who holds a conversion's lock (engine/models/conversion_lock.py). Its holder writes itself into the lock file as
temporaries name their writer (``HOST.PID-NS``, engine/convert/partials.py: a pid means something only on its own
machine and in its own pid namespace), so that a conversion waiting for it says which process it waits on, and gives
up on one that is stopped (Ctrl-Z in its terminal), which else held it, and the wizard's Convert, for ever.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from engine.convert.partials import Writer, writer_state, writer_tag
from engine.errors import DbtuiError


class ConversionHeldError(DbtuiError):
    """The conversion waited for is held by a stopped process: no wait ends."""


@dataclass(frozen=True)
class Holder:
    pid: int
    stopped: bool  # suspended (Ctrl-Z, kill -STOP): it converts nothing until continued


def sign(fd: int) -> None:
    """Write this process into the lock file open as ``fd``, over whatever an earlier holder wrote."""
    os.ftruncate(fd, 0)
    os.pwrite(fd, writer_tag().encode(), 0)


def holder_of(lock: Path) -> Holder | None:
    """The process the lock file names, where it runs on this machine and is seen from here; else None."""
    import psutil

    try:
        host, _, pid = lock.read_text(encoding="ascii").strip().partition(".")
    except (OSError, ValueError):
        return None
    if writer_state(host, pid) is not Writer.RUNNING:
        return None
    number = int(pid.partition("-")[0])
    try:
        return Holder(number, psutil.Process(number).status() == psutil.STATUS_STOPPED)
    except psutil.Error:
        return None


def held_by_stopped(folder: Path, holder: Holder) -> ConversionHeldError:
    return ConversionHeldError(
        f"another conversion into {folder} is held by process {holder.pid}, which is stopped (Ctrl-Z in its terminal, "
        f"or kill -STOP): it converts nothing until continued, so this one does not wait for it. Continue it (`fg` in "
        f"its terminal, or `kill -CONT {holder.pid}`) and try again once it ends, or end it (`kill {holder.pid}`, then "
        f"`kill -CONT {holder.pid}`) and try again at once")
