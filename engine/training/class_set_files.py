"""A generated class-image set's files written whole (its images and manifest: never half a file), and the
temporaries a killed writer left in its folder swept."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any


def replace_whole(path: Path, write: Callable[[Path], Any]) -> None:
    """``write`` a temporary file beside ``path``, then put it in its place: never half a file. The temporary goes
    when the write fails or is interrupted (a second Ctrl-C), so the folder is not left with it for good. One that
    vanished before its rename is written again: another machine's sweep took it (see ``sweep_temporaries``), or
    another run removed the folder it found empty."""
    for attempt in range(_WRITES):
        tmp = path.with_name(f".{path.name}.{os.getpid()}{_TMP}")
        try:
            write(tmp)
            os.replace(tmp, path)
            return
        except FileNotFoundError:
            tmp.unlink(missing_ok=True)
            if attempt + 1 == _WRITES:
                raise
            # Its folder found empty and removed by another run that began the same set and stopped before its first
            # image (ensure_class_images): made again. Not the class folder above it, whose loss is class_folder_error's.
            with contextlib.suppress(FileExistsError):
                path.parent.mkdir()
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


_WRITES = 3
_TMP = ".tmp"
# A temporary of ``replace_whole``, with the process that wrote it.
_TEMPORARY = re.compile(r"\..+\.(?P<pid>\d+)" + re.escape(_TMP))
_STALE_SECONDS = 60


def sweep_temporaries(folder: Path) -> None:
    """The temporaries a killed process left in ``folder`` (one killed outright cannot remove its own): those of a
    process not running on this machine, and a minute old, since a run on another machine sharing the folder may be
    writing one now. Their age is told by the clock that stamps the folder's files (a file server's, for a shared
    folder), not this machine's, which may run ahead of it."""
    left = [path for path in folder.iterdir()
            if (found := _TEMPORARY.fullmatch(path.name)) is not None and not _running(int(found["pid"]))]
    if not left:
        return
    now = _folder_clock(folder)
    for path in left:
        with contextlib.suppress(OSError):  # gone already, or another process's sweep took it
            if now - path.lstat().st_mtime > _STALE_SECONDS:
                path.unlink()


def _folder_clock(folder: Path) -> float:
    """The time now as ``folder``'s file system stamps it: the modification time of a file just written there."""
    probe = folder / f".clock.{os.getpid()}{_TMP}"  # a temporary's name: swept if a kill leaves it
    try:
        probe.write_bytes(b"")
        return probe.stat().st_mtime
    finally:
        probe.unlink(missing_ok=True)


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except PermissionError:  # another user's
        return True
    except (ProcessLookupError, OverflowError):  # none, or a number no process can have
        return False
    return True
