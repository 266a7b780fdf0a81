"""The launch lock: one launcher at a time checks a run folder and starts its trainer (RUN/.launching)."""

from __future__ import annotations

import contextlib
import os
import shlex
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from engine.runs.folder import RunFolder, RunFolderError

# A launch holds the lock through its input checks (every training image's header read, all of them decoded where one
# is damaged or with --detach) and its trainer's start: thousands of photos on a slow disk take minutes (2000 decoded
# at ~0.1 s each: over 3 min on one core). A launcher that dies lets go at once (an OS lock), so only a live one that
# hangs is waited for this long.
LAUNCH_WAIT_S = 600.0


@contextlib.contextmanager
def launching(folder: RunFolder, waiting: Callable[[], None] | None = None) -> Iterator[None]:
    """Held while a launcher checks that no trainer runs in ``folder`` and starts one, until the new
    trainer's state is written: a second ``dbtui run`` at the same moment waits, then finds it running. ``waiting``:
    told once where another launch holds it, so that a wait of minutes is said, not taken for a hang.

    An OS lock (flock), so one left by a killed launcher is gone with its process. Where it cannot be
    had (a folder this user cannot write, a disk without locks) the launch goes on unlocked, and the
    launcher's own checks say what is wrong. The lock file goes when the launch ends, and a folder made for
    the lock goes too if the launch fails: a refused folder of the user's is left as it was, and a run's
    folder keeps no empty file of the launch.
    """
    try:
        fd, made = _take_launch_lock(folder, waiting)
    except OSError:
        fd = None
    if fd is None:
        yield
        return
    started = False
    try:
        yield
        started = True
    finally:
        # Removed while still locked: a launcher waiting on it then locks a removed file, sees so, and takes a new
        # one (_take_launch_lock), which it locks at once, as this launch is done. The folder goes only while empty:
        # nothing of the user's or of another launch.
        with contextlib.suppress(OSError):
            folder.launching.unlink(missing_ok=True)
            if made is not None and not started:
                _remove_made(folder, made)
        os.close(fd)  # releases the lock


def _remove_made(folder: RunFolder, top: Path) -> None:
    """The run folder a refused launch made, with the empty sub-folders it made there (``RunFolder.create``) and the
    folders above it it made, up to ``top`` (a new saving.output_dir): a start refused (a damaged picture) left one
    behind, which `dbtui runs` does not list. One that holds a file stays. A `dbtui stop` asked while it launched goes
    with it: there is no run left to stop."""
    from engine.runs.control import drop_requests

    with contextlib.suppress(OSError):
        drop_requests(folder)
    for sub in (folder.control, folder.checkpoints, folder.samples, folder.log.parent, folder.path / "cache"):
        with contextlib.suppress(OSError):
            sub.rmdir()
    folder.path.rmdir()
    for above in folder.path.parents:
        if above == top.parent:
            break
        above.rmdir()  # raises where another run or a file of the user's has come: it stays


def _take_launch_lock(folder: RunFolder, waiting: Callable[[], None] | None = None) -> tuple[int | None, Path | None]:
    """The locked file descriptor of RUN/.launching, waiting at most LAUNCH_WAIT_S (None on a disk without locks), and
    the highest folder this launch made to hold it (the run folder, or a new saving.output_dir above it; None: it made
    none): at any try, as a failed launch may remove the one this one waited in."""
    import fcntl

    deadline = time.monotonic() + LAUNCH_WAIT_S
    made: Path | None = None
    while True:
        made = made or _highest_missing(folder.path)
        folder.path.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(folder.launching, os.O_CREAT | os.O_RDWR, 0o644)
        except FileNotFoundError:
            if os.path.islink(folder.launching):
                raise  # a dangling link: no wait mends it, and it is no other launch's
            # A failed launch removed the folder it made between this one's mkdir and open: make it again, as the
            # OSError would let this launch go on unlocked (launching).
            _wait_or_give_up(folder, deadline)
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            if waiting is not None:
                waiting()
                waiting = None
            _wait_or_give_up(folder, deadline)
            continue
        except OSError:  # no locks on this disk
            os.close(fd)
            return None, made
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(folder.launching))
        except FileNotFoundError:
            same = False
        if same:
            return fd, made
        os.close(fd)  # a failed launch removed the file while this one waited on it: lock the one there now


def _highest_missing(path: Path) -> Path | None:
    """The highest of ``path`` and the folders above it that does not exist yet: what ``mkdir(parents=True)`` makes."""
    missing = None
    for candidate in (path, *path.parents):
        if os.path.lexists(candidate):
            return missing
        missing = candidate
    return missing


def _wait_or_give_up(folder: RunFolder, deadline: float) -> None:
    """A moment's wait before trying the lock again; RunFolderError once another launch has held it past ``deadline``."""
    if time.monotonic() > deadline:
        raise RunFolderError(
            f"another launch into {folder.path} has been checking its images and starting its trainer for over "
            f"{LAUNCH_WAIT_S:.0f} s, longer than thousands of photos take to check on a slow disk, so it is likely stuck; "
            f"see what runs there with `dbtui runs {shlex.quote(str(folder.path.parent))}`, then try again") from None
    time.sleep(0.05)
