"""One `dbtui dataset prepare` into a folder at a time. Two at once (two terminals, the wizard's Prepare beside a
CLI one) each wrote their copies over the other's and their manifest first or last: at two resolutions the folder held
copies of one that the manifest called the other's, and preparing again said they were up to date.

The lock (flock, as the run folder's, engine/support/os_lock.py) is on a hidden file in the folder, kept there: a
lock file removed while held lets a waiter lock a file no longer named (conversion_lock.py handles that; a refusal
here needs none of it)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from engine.dataset.errors import DatasetError
from engine.support.os_lock import lock_exclusive

LOCK = ".dbtui-preparing.lock"


@contextmanager
def preparing_into(dst: Path) -> Iterator[None]:
    """Held while this process prepares into ``dst`` (made already); DatasetError where another does. Where no lock
    can be had (a folder this user cannot write, a disk without locks) the prepare goes on unlocked, and says itself
    what is wrong with the folder."""
    try:
        fd = os.open(dst / LOCK, os.O_CREAT | os.O_RDWR | os.O_NOFOLLOW, 0o644)
    except OSError:
        yield
        return
    try:
        try:
            held = lock_exclusive(fd)
        except OSError:
            held = None
        if held is False:
            raise DatasetError(f"another `dbtui dataset prepare` into {dst} is under way (in another terminal, or the "
                               "wizard's Prepare): run this again once it ends, or prepare into another folder")
        yield
    finally:
        os.close(fd)
