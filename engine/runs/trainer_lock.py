"""One trainer per run folder: an OS lock on RUN/trainer.lock, held for the trainer's whole life (held_file says why)."""

from __future__ import annotations

import errno
import os
import shlex
import time
from pathlib import Path

from engine.runs.folder import RunFolder, RunFolderError, unusable_folder
from engine.runs.held_file import forget, held, holder_pid, pid_in, remember, sign
from engine.runs.trainer_process import trainer_alive
from engine.support.os_lock import lock_exclusive, same_file


class TrainerLock:
    """The lock goes with its process, however it ends: a crash's is taken over. The file also names the holder's pid,
    for messages and for the trainers of older dbtui versions and of disks without locks, known by that pid alone."""

    def __init__(self, folder: RunFolder):
        self.folder = folder
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        path = self.folder.lock
        for _ in range(3):
            try:
                fd, made = _open_lock(path)
            except FileNotFoundError:
                continue  # removed between the two opens by a trainer ending
            except OSError as error:
                self._clear_unopenable(path, error)
                continue
            try:
                taken = self._take(fd, made)
            except OSError as error:
                os.close(fd)
                raise unusable_folder(self.folder.path, error) from None
            except BaseException:
                os.close(fd)
                raise
            if taken:
                return
            os.close(fd)
        raise RunFolderError(f"cannot take the lock {path}: other trainers keep taking it; try again")

    def _take(self, fd: int, made: bool) -> bool:
        """Lock ``fd`` and write this process's pid in it: True once held, False to try a new file."""
        path = self.folder.lock
        locked = lock_exclusive(fd)
        if locked and not same_file(fd, path):
            return False
        owner = 0 if made else _owner(fd)
        if locked is False or owner and owner != os.getpid() and trainer_alive(owner, self.folder.path):
            raise self._running(owner)
        if locked is None and not made:  # a crash's, on a disk without locks: made anew, as only creating is atomic
            path.unlink(missing_ok=True)
            return False
        sign(fd)
        if locked:
            remember(fd)
        self._fd = fd
        return True

    def _clear_unopenable(self, path: Path, error: OSError) -> None:
        """Remove a lock file this user cannot open for writing (a crashed container's, root's) or a link in its place,
        once no trainer holds it; raise when one does, or when it cannot be removed."""
        if not isinstance(error, PermissionError) and error.errno != errno.ELOOP:
            raise unusable_folder(self.folder.path, error) from None
        if not os.path.lexists(path):  # no file refused it: the folder did, and would again on every try
            raise self._unwritable()
        owner = holder_pid(path)
        if held(path) is True or owner and trainer_alive(owner, self.folder.path):
            raise self._running(owner)
        try:
            path.unlink(missing_ok=True)
        except OSError:
            raise unusable_folder(self.folder.path, error) from None

    def _unwritable(self) -> RunFolderError:
        shown = shlex.quote(str(self.folder.path))
        return RunFolderError(
            f"cannot take the lock {self.folder.lock}: this user may not write in the run folder {self.folder.path}; "
            f"make it writable (`chmod u+w {shown}` as its owner) or run dbtui as the user it belongs to")

    def _running(self, owner: int) -> RunFolderError:
        shown = shlex.quote(str(self.folder.path))
        trainer = f"a trainer (pid {owner})" if owner else "a trainer"
        return RunFolderError(
            f"{trainer} is already running in {self.folder.path}; watch it with `dbtui attach {shown}` or stop it with "
            f"`dbtui stop {shown}`. If none runs on any machine (one that died holding a network disk's lock), delete "
            f"{shlex.quote(str(self.folder.lock))} and try again")

    def release(self) -> None:
        if self._fd is None:
            return
        forget(self._fd)
        try:
            if same_file(self._fd, self.folder.lock):  # not another run's, made at this path after the folder moved
                self.folder.lock.unlink()  # before the lock goes: see same_file
        except OSError:
            pass  # left for the next trainer to take over
        os.close(self._fd)
        self._fd = None


def _open_lock(path: Path) -> tuple[int, bool]:
    """The lock file open for writing, and whether this call made it. Never through a link: its target is no lock of
    this run's, and would be written over."""
    try:
        return os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644), True
    except FileExistsError:
        return os.open(path, os.O_RDWR | os.O_NOFOLLOW), False


def _owner(fd: int) -> int:
    """The pid the lock file names; 0 for none. Read through ``fd``: where flock is emulated by POSIX locks (NFS),
    opening and closing the file again would drop this process's lock. Its taker writes the pid just after creating
    or locking the file, so an empty one is read again for a moment before it counts as a crash's: taken over at once,
    an older trainer that holds it by its pid alone would run beside this one."""
    for _ in range(20):
        text = os.pread(fd, 32, 0).strip()
        if text:
            return pid_in(text)
        time.sleep(0.05)
    return 0
