"""Output helpers shared by the converters: free-space check, write-then-rename, events."""

from __future__ import annotations

import errno
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from engine.convert.errors import ConvertError, NotEnoughDiskError, OutputExistsError, OutputNotWritableError
from engine.convert.mount_points import is_mount_point
from engine.convert.partials import partial_path, partials_of, remove_dead_partials, size_of
from engine.errors import os_error_in
from engine.events import Emit, Event, PhaseFinished, PhaseProgress, PhaseStarted



def _ignore(_: Event) -> None:
    pass


class Progress:
    """Sends PhaseStarted, then PhaseProgress per finished step, then PhaseFinished."""

    def __init__(self, emit: Emit | None, phase: str, total: int, description: str):
        self.emit = emit or _ignore
        self.phase = phase
        self.total = total
        self.done = 0
        self.started = time.monotonic()
        self.emit(PhaseStarted(phase=phase, total=total, description=description))

    def step(self) -> None:
        self.done += 1
        self.emit(PhaseProgress(phase=self.phase, done=self.done, total=self.total))

    def finish(self) -> None:
        self.emit(PhaseFinished(phase=self.phase, seconds=time.monotonic() - self.started))


def make_folder(folder: Path) -> None:
    """Create an output folder, or say in plain words why it cannot be."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputExistsError(f"{folder} is a file, not a folder; choose another output location") from None
    except PermissionError:
        raise ConvertError(f"cannot write to {folder}: permission denied; choose an output location you can write to") from None
    except OSError as error:
        raise ConvertError(f"cannot create {folder} ({error.strerror or type(error).__name__}); choose another output location") from None


def check_free_space(target: Path, needed_bytes: int) -> None:
    """Refuse before writing ``target`` when it cannot fit (10% margin for headers and metadata). Killed writes'
    temporaries of it go first: gigabytes each, they would else count as used and refuse the write that replaces
    them."""
    folder = target.parent
    make_folder(folder)
    remove_dead_partials(target)
    usage = shutil.disk_usage(folder)
    if usage.total == 0:  # /proc, /sys: no disk behind them, whose 0 bytes free were said as a full disk
        raise ConvertError(f"cannot write {target.name} in {folder}: its file system has no disk behind it (0 bytes in "
                           "all, as /proc and /sys), it holds no files; choose an output folder on a disk")
    free = usage.free
    needed = int(needed_bytes * 1.1)
    if free < needed:
        from rich.filesize import decimal

        left = [f"{path.name} ({decimal(size_of(path))})" for path in partials_of(target)]
        kept = (f" Beside it are temporaries of other writes of {target.name}, too recent to be known abandoned: "
                f"{', '.join(left)}; delete them once no conversion or export writes it any more."
                if left else "")
        raise NotEnoughDiskError(
            f"not enough disk space in {folder}: the output needs about {decimal(needed)}, "
            f"{decimal(free)} is free. Free some space or choose an output on another disk.{kept}"
        )


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# safetensors writes owner-only (0600) files; outputs get the usual permissions instead, so a
# WebUI running as another user can read them.
FILE_MODE = 0o666 & ~_umask()


def usual_permissions(root: Path) -> None:
    """Give ``root`` (a file, or every file under a folder) the permissions new files get here (FILE_MODE), where
    safetensors and mkstemp made them owner-only: a WebUI, a container or another user must read a model."""
    for file in [root] if root.is_file() else root.rglob("*"):
        if file.is_file() and not file.is_symlink():
            os.chmod(file, FILE_MODE)


# Below this much free space a failed write is put down to a full disk (a write fails with less than its buffer left).
NEARLY_FULL_BYTES = 64 * 2**20


def _torch_write_error(target: Path, error: Exception) -> ConvertError | None:
    """The message for torch.save's writer failing, which reports the machine's error only as "[enforce fail at
    inline_container.cc …] unexpected pos …" or "PytorchStreamWriter failed writing file …": a full disk where little
    is free, else a write the disk refused for a reason it does not tell. None for any other error."""
    text = str(error)
    if not isinstance(error, RuntimeError) or ("inline_container.cc" not in text and "PytorchStreamWriter" not in text):
        return None
    try:
        full = shutil.disk_usage(target.parent).free < NEARLY_FULL_BYTES
    except OSError:
        full = False
    if full:
        return _not_enough_disk(target)
    return ConvertError(f"writing {target} failed ({text.splitlines()[0][:160]}) with room left on its disk: a disk "
                        "quota used up, a file too large for the file system (FAT32 takes at most 4 GB a file) or a "
                        "failing disk; check them (quota -s, df -T), or choose an output on another disk")


def _write_error(target: Path, error: Exception) -> ConvertError | None:
    """The message for the machine's error while writing ``target`` (a full or read-only disk, a folder not
    writable), or None when ``error`` is none of those (it is then raised as it is)."""
    folder = target.parent
    machine = os_error_in(error)
    if machine is None:
        return _torch_write_error(target, error)
    if machine.errno == errno.ENOSPC:
        return _not_enough_disk(target)
    if machine.errno == errno.EDQUOT:
        return NotEnoughDiskError(f"your disk quota is used up in {folder}, writing {target.name}: free some of your "
                                  "files there, or choose an output on another disk")
    if machine.errno == errno.EFBIG:
        return ConvertError(f"cannot write {target}: the file is too large for this file system (FAT32 takes at most "
                            "4 GB a file); write to another disk")
    if machine.errno == errno.EROFS:
        return OutputNotWritableError(f"cannot write {target}: its file system is read-only; choose another output "
                                      "location", folder, errno.EROFS)
    # Permission on the output's folder only: an input that cannot be read says so where it is read.
    if machine.errno in (errno.EACCES, errno.EPERM) and str(machine.filename or "").startswith(str(folder)):
        return OutputNotWritableError(f"cannot write to {folder}: permission denied; choose an output location you can "
                                      "write to", folder)
    return None


def _not_enough_disk(target: Path) -> NotEnoughDiskError:
    return NotEnoughDiskError(f"not enough disk space in {target.parent} to write {target.name}. Free some space or "
                              "choose an output on another disk.")


@contextmanager
def _written_as(target: Path, tmp: Path, remove: Callable[[Path], None]) -> Iterator[None]:
    """Inside, the machine's write errors become messages; ``tmp`` is removed afterwards, whatever happened (on a
    read-only disk its removal fails as well, and must not hide the error that matters)."""
    try:
        yield
    except Exception as error:
        said = _write_error(target, error)
        if said is None:
            raise
        raise said from None
    finally:
        with suppress(OSError):
            remove(tmp)


def check_file_output(target: Path, *, folder: bool = False) -> None:
    """Refuse an output that cannot be written (a folder where a file is to go, a place that cannot be made or
    written to): asked first by the converters, before minutes of converting, and again when it is written."""
    if target.is_dir() and not folder:
        raise OutputExistsError(f"{target} is a folder; give the name of the file to write")
    place = target.parent.absolute()
    while not place.exists():  # nothing is made yet: the nearest folder that exists decides
        place = place.parent
    if not place.is_dir():
        raise OutputExistsError(f"{place} is a file, not a folder; choose another output location")
    if not os.access(place, os.W_OK) and os.statvfs(place).f_flag & os.ST_RDONLY:
        raise OutputNotWritableError(f"cannot write to {place}: its file system is read-only; choose another output "
                                     "location", place, errno.EROFS)
    if not os.access(place, os.W_OK):
        raise OutputNotWritableError(f"cannot write to {place} (read-only, or not yours); choose an output location you "
                                     "can write to", place)


def _appeared(target: Path) -> OutputExistsError:
    return OutputExistsError(f"{target} appeared while converting (another conversion to the same name?) and is "
                             "kept: choose another name, or add --overwrite to replace it")


def _publish_new_file(tmp: Path, target: Path) -> None:
    """``tmp`` as ``target`` only where nothing is: a hard link fails where a file is, at once, where a check and
    then a rename would replace a file another conversion wrote between the two."""
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise _appeared(target) from None
    except OSError:
        # No hard links here: FAT and exFAT answer EPERM, FUSE and SMB mounts EACCES, EINVAL or EIO as well. ``tmp``
        # was just written in this folder, so the folder takes files; the best such a file system allows follows.
        if target.exists() or target.is_symlink():
            raise _appeared(target) from None
        os.replace(tmp, target)


@contextmanager
def atomic_file(target: Path, *, overwrite: bool = True) -> Iterator[Path]:
    """A temporary path beside ``target``, put in its place only when the block succeeds: over a file there with
    ``overwrite``, else only where none is (one that appeared meanwhile is kept, and OutputExistsError said)."""
    check_file_output(target)
    make_folder(target.parent)
    remove_dead_partials(target)
    tmp = partial_path(target)
    with _written_as(target, tmp, lambda path: path.unlink(missing_ok=True)):
        yield tmp
        usual_permissions(tmp)
        if overwrite:
            os.replace(tmp, target)
        else:
            _publish_new_file(tmp, target)


def check_new_folder(target: Path) -> None:
    """Refuse an output folder that holds something, that a rename cannot replace (a link, a mount point), or whose
    place cannot be written: asked first, before minutes of converting."""
    target = Path(target)
    if target.is_symlink():
        # The converted folder is renamed into place: it would replace the link, and the folder it names stay empty.
        raise OutputExistsError(f"{target} is a link (to {os.readlink(target)}); give the folder it links to, or a new "
                                "output folder")
    if target.exists() and not target.is_dir():
        raise OutputExistsError(f"{target} is a file, not a folder: the output is a folder, so give a new folder's name "
                                "(or remove the file)")
    if target.exists() and any(target.iterdir()):
        raise OutputExistsError(f"{target} already exists and is not empty; choose a new output folder or remove it")
    if target.is_dir() and is_mount_point(target):
        raise OutputExistsError(f"{target} is a mount point, which the converted folder cannot be renamed onto; give a "
                                f"new folder inside it, e.g. {target / 'model'}")
    check_file_output(target, folder=True)


# What renaming a folder onto ``target`` answers when something else took the place meanwhile: a folder that was
# filled, a file or a link, a mount point.
TAKEN_MEANWHILE = {
    errno.ENOTEMPTY: "was filled while converting (by another conversion or program?)",
    errno.EEXIST: "was filled while converting (by another conversion or program?)",
    errno.ENOTDIR: "became a file or a link while converting",
    errno.EBUSY: "is a mount point or in use",
}


def _publish_folder(tmp: Path, target: Path) -> None:
    """Rename ``tmp`` onto ``target`` (absent, or the empty folder check_new_folder accepted). Where something took
    its place meanwhile, that is left alone and the converted folder kept under a name of its own."""
    try:
        if target.exists() or target.is_symlink():
            target.rmdir()
        os.replace(tmp, target)
    except OSError as error:
        happened = TAKEN_MEANWHILE.get(error.errno or 0)
        if happened is None:
            raise
        kept = target.with_name(f"{target.name}-converted-{uuid.uuid4().hex[:6]}")
        try:
            os.rename(tmp, kept)
        except OSError:
            raise OutputExistsError(f"{target} {happened}; it is left as it is and nothing was written: choose a new "
                                    "output folder and convert again") from None
        raise OutputExistsError(f"{target} {happened}; it is left as it is, and the converted folder is kept as {kept}: "
                                "use it from there, or move it where you want it") from None


@contextmanager
def atomic_dir(target: Path, before_publish: Callable[[Path], None] | None = None) -> Iterator[Path]:
    """A temporary folder beside ``target``, renamed onto it only when the block succeeds; ``before_publish`` is
    given the finished folder before, for what must be in it when it appears (a conversion's note)."""
    check_new_folder(target)
    make_folder(target.parent)
    remove_dead_partials(target)
    tmp = partial_path(target)
    make_folder(tmp)
    with _written_as(target, tmp, lambda path: shutil.rmtree(path, ignore_errors=True)):
        yield tmp
        if before_publish is not None:
            before_publish(tmp)
        usual_permissions(tmp)
        _publish_folder(tmp, target)
