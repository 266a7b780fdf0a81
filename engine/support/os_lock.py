"""Taking an OS lock (flock) on an open file, and telling whether a lock file is still the one a path names: the run
folder's locks (engine/runs/held_file.py) and a conversion's (engine/models/conversion_lock.py) take theirs alike."""

from __future__ import annotations

import errno
import fcntl
import os
import time
from pathlib import Path

TAKE_WAIT_S = 1.0  # a test of the lock holds it for microseconds: a trainer taking it waits that out, not a trainer

# What a disk without locks answers. Any other error (ESTALE, EIO) is no sign that no trainer holds the lock.
_NO_LOCKS = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}


def lock_exclusive(fd: int) -> bool | None:
    """Lock ``fd`` for this process alone: True once locked, False while another holds it (after TAKE_WAIT_S), None
    on a disk without locks."""
    deadline = time.monotonic() + TAKE_WAIT_S
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        except OSError as error:
            if error.errno in _NO_LOCKS:
                return None
            raise


def lock_waiting(fd: int) -> bool:
    """Lock ``fd`` for this process alone, waiting as long as another holds it: True once locked, False on a disk
    without locks (the caller goes on unlocked)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError as error:
        if error.errno in _NO_LOCKS:
            return False
        raise
    return True


def same_file(fd: int, path: Path) -> bool:
    """Whether ``path`` still names the file open as ``fd``: a trainer ending removes its lock file while it holds it,
    and one that then locked the removed file would hold nothing."""
    try:
        return os.path.samestat(os.fstat(fd), os.lstat(path))
    except FileNotFoundError:
        return False
