"""One conversion into a folder at a time: a second conversion of the same file into the same folder (the wizard's
Convert in two terminals, an export converting a run's base while its resumed trainer does) waits for the first, then
finds its folder and reuses it. Unlocked, both converted for minutes, and the second failed ("already exists", or
"was filled while converting") leaving a copy of gigabytes beside it.

The lock (flock, taken by engine/support/os_lock.py as the run folder's are) is on a hidden file beside the folder,
removed by its holder when done.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from engine.events import Event
from engine.events import Warning as WarningEvent
from engine.models.conversion_holder import Holder, held_by_stopped, holder_of, sign
from engine.support.os_lock import lock_exclusive, same_file


def waiting_said(emit: Callable[[Event], None] | None, path: Path,
                 folder: Path) -> Callable[[Holder | None], None] | None:
    """What a conversion waiting for another tells: a warning naming the process it waits on (where it is seen from
    here), else its progress seems stuck before it begins, and nothing says what holds it."""
    if emit is None:
        return None

    def said(holder: Holder | None) -> None:
        which = f"by {holder.what}, " if holder is not None else ""
        ending = f"; {holder.ending}" if holder is not None else ""
        emit(WarningEvent(
            message=f"another conversion into {folder} is under way ({which}in another terminal, run or export): "
                    f"{path.name} waits for it, and uses its folder where that holds this file's conversion",
            advice=f"nothing to do: this goes on by itself once the other conversion ends{ending}"))
    return said


def lock_path(folder: Path) -> Path | None:
    """The hidden file beside ``folder`` that its conversions lock; None for the root, which has nothing beside it."""
    folder = Path(os.path.abspath(folder))  # "." and ".." have no name of their own to put a file beside
    return folder.with_name(f".{folder.name}.converting") if folder.name else None


@contextmanager
def converting_into(folder: Path, waiting: Callable[[Holder | None], None] | None = None) -> Iterator[None]:
    """Held while this process converts into ``folder``; ``waiting`` is called once, with the holder, if another holds
    it first; ConversionHeldError where that holder is stopped (Ctrl-Z). Where no lock can be had (a folder this user
    cannot write, a disk without locks, the root) the conversion goes on unlocked, and says itself what is wrong with
    the folder."""
    lock = lock_path(folder)
    fd = None if lock is None else _take(lock, folder, waiting)
    try:
        yield
    finally:
        if lock is not None and fd is not None:
            # Removed while still held: a waiter then holds a removed file, sees so, and takes the new one (_take).
            with suppress(OSError):
                lock.unlink()
            os.close(fd)


def _take(lock: Path, folder: Path, waiting: Callable[[Holder | None], None] | None) -> int | None:
    told = False
    unnamed = 0  # misses in a row whose lock file named no process
    while True:
        try:
            lock.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock, os.O_CREAT | os.O_RDWR | os.O_NOFOLLOW, 0o644)
        except OSError:
            return None
        try:
            held = lock_exclusive(fd)  # tries for a second: each miss comes back here
        except OSError:
            held = None
        if held is None:
            os.close(fd)
            return None
        if held and same_file(fd, lock):
            with suppress(OSError):  # unsigned, a waiter says less of it
                sign(fd)
            return fd
        os.close(fd)
        holder = holder_of(lock) if not held else None
        if holder is not None and holder.stopped:
            raise held_by_stopped(folder, holder)
        if held or told or waiting is None:
            continue
        # A new holder names itself just after it takes the lock: read in between, the file names no one yet. A second
        # miss in a row naming no one is a holder that cannot be named from here (another machine's, say).
        unnamed = 0 if holder is not None else unnamed + 1
        if unnamed != 1:
            waiting(holder)
            told = True

