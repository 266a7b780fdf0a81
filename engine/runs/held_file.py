"""The OS locks (flock) a trainer holds for its whole life, and the test of whether one does: RUN/trainer.lock (one
trainer per run folder, trainer_lock.py) and, on a machine other than 0, RUN/logs/profile-machine-N.lock (one launch
of that machine's part of the run, meeting.py).

A recorded pid means nothing outside its own PID namespace: a run trained in a container and looked at from the host
(or the other way round) read as crashed, and `resume` started a second trainer on it. The kernel drops a flock when
its holder ends, however it ends (killed, out of memory; a rebooted machine holds none), whoever looks, and it stays
with the file when the run folder is moved.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

_OWN: dict[tuple[int, int], int] = {}  # (device, inode) of each lock this process holds: its fd


def sign(fd: int) -> None:
    """Write this process's pid in the lock file open as ``fd``, over whatever an earlier holder wrote."""
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)


def pid_in(text: bytes) -> int:
    """The pid a lock file's ``text`` names; 0 for none."""
    return int(text) if text.isdigit() else 0  # bytes: ASCII digits only


def holder_pid(path: Path) -> int:
    """The pid the lock file ``path`` names, read without this process locking it; 0 for none or unreadable. Its
    caller must not hold that lock itself: where flock is emulated by POSIX locks (NFS), closing this other descriptor
    of the file would drop it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return 0
    try:
        return pid_in(os.pread(fd, 32, 0).strip())
    finally:
        os.close(fd)


def remember(fd: int) -> None:
    """Note ``fd`` as a lock this process holds (see ``held``)."""
    stat = os.fstat(fd)
    _OWN[(stat.st_dev, stat.st_ino)] = fd


def forget(fd: int) -> None:
    stat = os.fstat(fd)
    _OWN.pop((stat.st_dev, stat.st_ino), None)


def held(path: Path) -> bool | None:
    """Whether a process holds ``path`` locked: True or False, or None where it cannot be told (no such file, not ours
    to read, a disk without locks).

    This process's own locks are known without opening the file: where flock is emulated by POSIX locks (NFS),
    closing any descriptor of the file would drop this process's lock on it.
    """
    try:
        stat = os.lstat(path)
    except OSError:
        return None
    if (stat.st_dev, stat.st_ino) in _OWN:
        return True
    try:
        # A shared lock needs only reading, on NFS too; a link in the lock's place is no trainer's.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return None
    finally:
        os.close(fd)  # and the shared lock with it
    return False
