"""An export's pin: its checkpoint's files hard-linked into RUN/checkpoints/.export-step-N-XXXX for as long as the
export runs: beside the checkpoint, so on its disk wherever RUN/checkpoints links to (hard links cannot cross disks).

A live run's rotation (saving.keep_last_n) then removes only the checkpoint's names, and the export still reads them
whole. The export holds a flock on the pin's lock file for its whole life: the kernel drops it however the export
ends (killed, out of memory, its terminal closed), so the next export of the run removes the pins no process holds,
each of which would otherwise keep a whole checkpoint's disk space, unseen (a dot name). A pin whose lock cannot be
told (no lock file, a disk without locks) is left alone: it may be a live export's; only once empty and old is it
removed (what NFS leaves of a pin whose lock file was removed while open).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from engine.runs.checkpoints import MANIFEST, PIN_PREFIX, CheckpointError
from engine.runs.held_file import forget, held, remember
from engine.support.os_lock import lock_exclusive, same_file

PIN_LOCK = ".export.lock"  # in the pin, held by its export: no checkpoint has a file of that name
_TRIES = 3  # a pin swept by another export between its making and its lock is made again
_EMPTY_AGE_S = 60.0  # an empty pin with no lock file is swept once this old: never one whose lock is about to be made


@contextlib.contextmanager
def pinned(checkpoint: Path) -> Iterator[Path]:
    """The checkpoint's files, pinned beside it while the block runs; where the disk has no hard links (or no room
    for the folder), the checkpoint itself. CheckpointError where the checkpoint was removed before it was pinned."""
    beside = checkpoint.resolve().parent
    sweep_pins(beside)
    made = _new_pin(checkpoint, beside)
    if made is None:
        yield checkpoint
        return
    pin, lock = made
    try:
        files = _linked(checkpoint, pin)
        if files == pin:
            yield pin
            return
    finally:
        _drop(pin, lock)  # made by this call, under a name no other export takes
    yield checkpoint  # the pin, of no use, is gone already


def _drop(pin: Path, lock: int | None) -> None:
    """Remove the pin this process made, ``lock`` its descriptor of the lock file (held, or None)."""
    emptied = _emptied(pin)
    if lock is not None:
        forget(lock)
        # Closed before its file is removed: on NFS a file removed while open stays, renamed .nfsXXXX, and its folder
        # with it, for good. No export reads the pin now: a sweep that takes the lock meanwhile only removes it too.
        os.close(lock)
    if emptied:
        _remove_lock(pin)


def _new_pin(checkpoint: Path, beside: Path) -> tuple[Path, int | None] | None:
    """A new empty pin and its held lock (None where the disk has no locks); None where no folder can be made."""
    for _ in range(_TRIES):
        try:
            pin = Path(tempfile.mkdtemp(prefix=f"{PIN_PREFIX}{checkpoint.name}-", dir=beside))
        except OSError:  # a read-only run folder, no room
            return None
        try:
            lock = os.open(pin / PIN_LOCK, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError:
            shutil.rmtree(pin, ignore_errors=True)
            return None
        try:
            taken = lock_exclusive(lock)
        except OSError:  # the disk cannot say (ESTALE, EIO): as on a disk without locks
            taken = None
        if taken is None:  # the pin works still; without its lock file no sweep takes it (held() cannot tell)
            with contextlib.suppress(OSError):
                (pin / PIN_LOCK).unlink()
            os.close(lock)
            return pin, None
        if taken and same_file(lock, pin / PIN_LOCK):
            remember(lock)
            return pin, lock
        _drop(pin, lock)  # another export's sweep took it before the lock did (and is removing it)
    return None


def _linked(checkpoint: Path, pin: Path) -> Path:
    """The files an export reads: ``pin`` once the checkpoint is linked into it, else the checkpoint itself."""
    removed = f"checkpoint {checkpoint} was removed while it was read"
    try:
        shutil.copytree(checkpoint, pin, copy_function=os.link, dirs_exist_ok=True)
    except shutil.Error as error:  # some files could not be linked: gone meanwhile, or not linkable here
        if not (checkpoint / MANIFEST).exists():
            raise CheckpointError(removed) from error
        return checkpoint
    except FileNotFoundError as error:
        raise CheckpointError(removed) from error
    except OSError:  # no hard links on this disk (FAT, some network shares)
        return checkpoint
    if not (pin / MANIFEST).is_file():  # listed once rotation had begun (its manifest goes first): not whole
        raise CheckpointError(removed)
    return pin


def sweep_pins(folder: Path) -> None:
    """Remove the pins in ``folder`` whose export is gone: those whose lock no process holds."""
    with contextlib.suppress(OSError):
        for pin in folder.glob(f"{PIN_PREFIX}*"):
            _sweep(pin)


def _sweep(pin: Path) -> None:
    lock_path = pin / PIN_LOCK
    told = held(lock_path)
    if told is None:  # no lock file (or not told): never a pin to empty, but maybe an empty one NFS left behind
        _remove_if_long_empty(pin)
    if told is not False:  # held, this process's own (never opened: that drops an NFS lock), or not told
        return
    try:
        lock = os.open(lock_path, os.O_RDWR | os.O_NOFOLLOW)  # an exclusive NFS lock needs writing
    except OSError:
        return
    try:
        # Taken, not only tested: an export that locks it after this finds its lock file gone (same_file) and makes
        # another pin.
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(lock)
        return
    try:
        # Its file is removed while held, unlike an export's own: an export that made this pin a moment ago may be
        # about to lock it, and must find that file gone, not hold a lock on one removed after.
        if _emptied(pin):
            _remove_lock(pin)
    finally:
        os.close(lock)
    with contextlib.suppress(OSError):
        pin.rmdir()  # where NFS kept the lock file (.nfsXXXX) until the close


def _emptied(pin: Path) -> bool:
    """Remove all of ``pin`` but its lock file; whether that is all that is left (else the lock file stays, for a later
    sweep to take the rest)."""
    _writable_folders(pin)
    try:
        for entry in pin.iterdir():
            if entry.name == PIN_LOCK:
                continue
            with contextlib.suppress(OSError):  # and the others are removed still
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
        return all(entry.name == PIN_LOCK for entry in pin.iterdir())
    except FileNotFoundError:  # removed already (by a sweep that took it first)
        return True
    except OSError:
        return False


def _writable_folders(pin: Path) -> None:
    """Make ``pin`` and its folders this user's to empty: copytree gave them the checkpoint's modes (a kept step a user
    made read-only). They are the pin's own folders, so the checkpoint keeps its modes; the files, links to the
    checkpoint's, are left as they are, and so is what a link in the pin points to."""
    with contextlib.suppress(OSError):
        os.chmod(pin, stat.S_IRWXU)
    for root, folders, _ in os.walk(pin):  # top-down: each folder is made readable before it is listed
        for name in folders:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                with contextlib.suppress(OSError):
                    os.chmod(path, stat.S_IRWXU)


def _remove_lock(pin: Path) -> None:
    """Remove an emptied pin's lock file and then the pin: last, so that a removal cut short (a kill) or failed leaves
    its lock for a later sweep to take, never linked weights without one, which no sweep can tell abandoned."""
    with contextlib.suppress(OSError):
        (pin / PIN_LOCK).unlink(missing_ok=True)
        pin.rmdir()


def _remove_if_long_empty(pin: Path) -> None:
    """Remove ``pin`` where it is an empty folder, its lock file removed long ago: one NFS kept (.nfsXXXX) past its
    removal. A new pin is empty only for the moment before its lock file is made."""
    with contextlib.suppress(OSError):
        if time.time() - pin.stat().st_mtime > _EMPTY_AGE_S:
            pin.rmdir()  # only ever an empty folder
