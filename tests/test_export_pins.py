"""An export's pin (its checkpoint hard-linked in RUN/.export-…): gone with the export however it ends, a killed
export's removed by the next, a live one's never, and a pin listed once rotation had begun said as the removal."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from engine.runs.checkpoints import MANIFEST, Checkpointer, complete_checkpoints
from engine.runs.export import NoSuchCheckpointError, export_checkpoint
from engine.runs.export_pin import PIN_LOCK, pinned, sweep_pins
from tests.runs_helpers import run_with_checkpoints

HOLD = """\
import sys, time
from pathlib import Path
from engine.runs.export_pin import pinned
with pinned(Path(sys.argv[1])) as files:
    print(files, flush=True)
    time.sleep(600)
"""


def _holding_export(checkpoint: Path) -> tuple[subprocess.Popen[str], Path]:
    """Another process's export, holding its pin until it is killed."""
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(checkpoint)], stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    line = process.stdout.readline().strip() if process.stdout else ""
    assert line, "the holding export did not start"
    return process, Path(line)


def test_a_killed_exports_pin_is_removed_by_the_next_export_and_a_live_ones_is_kept(tmp_path: Path) -> None:
    """A kill (ssh closed, out of memory) during the minutes an export holds its pin left RUN/.export-PID-step-N: a
    whole checkpoint's disk space, unseen, for good once rotation removed the checkpoint."""
    folder, _ = run_with_checkpoints(tmp_path, [3])
    checkpoint = folder.checkpoints / "step-00000003"
    killed, left = _holding_export(checkpoint)
    live, kept = _holding_export(checkpoint)
    try:
        assert left.name.startswith(".export-step-00000003-") and (left / "model.safetensors").is_file()
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=30)
        assert left.is_dir()  # nothing ran to remove it
        with pinned(checkpoint) as files:
            assert files.parent == folder.checkpoints and (files / MANIFEST).is_file()
            assert not left.exists() and (kept / "model.safetensors").is_file()  # the live export's is its own
        assert not files.exists()
    finally:
        live.kill()
        live.wait(timeout=30)
        killed.kill()


def test_an_export_never_removes_a_pin_it_did_not_make(tmp_path: Path) -> None:
    """Pins were named .export-PID-step-N: where PIDs repeat (containers sharing a disk), the name was taken, and the
    FileExistsError removed the other export's pin. One without a lock file may be being made: it stays too."""
    folder, _ = run_with_checkpoints(tmp_path, [3])
    other = folder.checkpoints / f".export-{os.getpid()}-step-00000003"
    other.mkdir()
    (other / "model.safetensors").write_bytes(b"another export's")
    with pinned(folder.checkpoints / "step-00000003") as files:
        assert files != other and (files / "model.safetensors").read_bytes() != b"another export's"
    assert (other / "model.safetensors").read_bytes() == b"another export's"


def test_a_pin_listed_after_rotation_removed_the_manifest_is_said_as_the_removal(tmp_path: Path, monkeypatch) -> None:
    """The pin held the parts still there, with no manifest and no error: the export failed later on the pin's own
    path (RUN/.export-…), which was gone by then."""
    import engine.runs.export as export

    folder, _ = run_with_checkpoints(tmp_path, [3, 6])
    checkpoint = folder.checkpoints / "step-00000003"
    monkeypatch.setattr(export, "damage_of", lambda path: (path / MANIFEST).unlink())  # rotation's first removal
    with pytest.raises(NoSuchCheckpointError, match="the checkpoint at step 3 was removed while it was read"):
        export_checkpoint(folder.path, 3)
    assert not list(folder.checkpoints.glob(".export-*")) and (checkpoint / "model.safetensors").is_file()


def test_without_hard_links_the_export_reads_the_checkpoint_itself(tmp_path: Path, monkeypatch) -> None:
    folder, _ = run_with_checkpoints(tmp_path, [3])
    checkpoint = folder.checkpoints / "step-00000003"

    def no_hard_links(source: str, target: str) -> None:
        raise PermissionError(1, "Operation not permitted")  # as FAT or some network shares answer

    monkeypatch.setattr(os, "link", no_hard_links)
    with pinned(checkpoint) as files:
        assert files == checkpoint and not list(folder.checkpoints.glob(".export-*"))
    (checkpoint / MANIFEST).unlink()  # and rotation removing it before it was read: said as such
    with pytest.raises(Exception, match="was removed while it was read"), pinned(checkpoint):
        pass
    assert not list(folder.checkpoints.glob(".export-*")) and not (folder.checkpoints / PIN_LOCK).exists()


def test_a_pin_whose_lock_failed_once_is_never_swept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A lock refused once (EIO, ESTALE on a network disk) left the pin's lock file unheld: the next export's sweep took
    it and removed the pin while its export read it."""
    import errno

    from engine.runs import export_pin

    folder, _ = run_with_checkpoints(tmp_path, [3])
    checkpoint = folder.checkpoints / "step-00000003"

    def refused(fd: int) -> bool:
        raise OSError(errno.EIO, "Input/output error")

    with monkeypatch.context() as patched:
        patched.setattr(export_pin, "lock_exclusive", refused)
        made = export_pin._new_pin(checkpoint, folder.checkpoints)
    assert made is not None and made[1] is None
    export_pin.sweep_pins(folder.checkpoints)
    assert made[0].is_dir()
    export_pin._drop(*made)
    assert not made[0].exists()


def test_a_pin_whose_removal_is_cut_short_keeps_its_lock_for_a_later_sweep(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """rmtree removed the lock file among the first: a kill then left linked weights with no lock, never swept."""
    from engine.runs import export_pin

    pin = tmp_path / ".export-step-3-x"
    (pin / "unet").mkdir(parents=True)
    (pin / PIN_LOCK).write_text("")
    (pin / "unet" / "w.safetensors").write_text("w")
    (pin / "a.json").write_text("{}")
    real_unlink = Path.unlink

    def killed(self: Path, missing_ok: bool = False) -> None:
        if self.name != PIN_LOCK:
            raise KeyboardInterrupt
        real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", killed)
    with pytest.raises(KeyboardInterrupt):
        export_pin._drop(pin, None)
    assert (pin / PIN_LOCK).exists()


def _refused_as_for_any_user(monkeypatch: pytest.MonkeyPatch) -> None:
    """Root removes names from folders it may not write: unlink and rmdir refuse there, as the kernel does to others."""
    for name in ("unlink", "rmdir"):
        def refusing(path, *, dir_fd=None, real=getattr(os, name)):  # type: ignore[no-untyped-def]
            parent = os.fstat(dir_fd) if dir_fd is not None else os.stat(os.path.dirname(os.path.abspath(path)))
            if not parent.st_mode & stat.S_IWUSR:
                raise PermissionError(errno.EACCES, "Permission denied", str(path))
            real(path, dir_fd=dir_fd)

        monkeypatch.setattr(os, name, refusing)


def test_the_pin_of_a_read_only_checkpoint_goes_with_its_export(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """copytree gives the pin's folders the checkpoint's modes: one a user made read-only (chmod a-w, to keep a step)
    left the pin's weights unremovable, its lock file removed all the same, and no sweep ever took it: a hidden copy of
    the whole checkpoint for good once rotation removed the checkpoint."""
    folder, _ = run_with_checkpoints(tmp_path, [3])
    checkpoint = folder.checkpoints / "step-00000003"
    (checkpoint / "unet").mkdir()
    (checkpoint / "unet" / "w.safetensors").write_bytes(b"w")
    kept = (checkpoint / "unet", checkpoint)
    for path in kept:
        path.chmod(0o555)
    if os.geteuid() == 0:
        _refused_as_for_any_user(monkeypatch)
    try:
        with pinned(checkpoint) as files:
            assert files != checkpoint
        assert not list(folder.checkpoints.glob(".export-*"))
        assert (checkpoint / "unet" / "w.safetensors").stat().st_nlink == 1
        assert all(stat.S_IMODE(path.stat().st_mode) == 0o555 for path in kept)  # the checkpoint's own are as they were
    finally:
        for path in kept:
            path.chmod(0o755)


def test_a_pin_not_wholly_removed_keeps_its_lock_file_for_a_later_sweep(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Its lock file was removed whatever was left: linked weights without a lock, which no sweep can tell abandoned."""
    folder, _ = run_with_checkpoints(tmp_path, [3])
    real_unlink = Path.unlink

    def busy(self: Path, missing_ok: bool = False) -> None:
        if self.name != PIN_LOCK:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        real_unlink(self, missing_ok=missing_ok)

    with monkeypatch.context() as refused:
        refused.setattr(Path, "unlink", busy)
        with pinned(folder.checkpoints / "step-00000003") as files:
            pass
    assert (files / PIN_LOCK).is_file() and (files / "model.safetensors").is_file()
    sweep_pins(folder.checkpoints)
    assert not files.exists()


def _open_here(path: Path) -> bool:
    """Whether this process has ``path`` open."""
    fds = Path("/proc/self/fd")
    return any(os.readlink(fd) == str(path) for fd in list(fds.iterdir()) if fd.is_symlink())


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_an_export_closes_its_lock_before_removing_the_lock_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On NFS a file removed while open is only renamed (.nfsXXXX): the pin stayed, an empty folder no sweep took."""
    folder, _ = run_with_checkpoints(tmp_path.resolve(), [3])
    open_when_removed: list[bool] = []
    real_unlink = Path.unlink

    def noting(self: Path, missing_ok: bool = False) -> None:
        if self.name == PIN_LOCK:
            open_when_removed.append(_open_here(self))
        real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", noting)
    with pinned(folder.checkpoints / "step-00000003") as files:
        assert _open_here(files / PIN_LOCK)
    assert open_when_removed == [False] and not files.exists()


def test_an_empty_pin_without_a_lock_file_is_swept_once_old(tmp_path: Path) -> None:
    """What NFS leaves of a pin whose lock file was removed while open; a new pin is empty only before its lock file
    is made, and is left alone."""
    old, new = tmp_path / ".export-step-00000003-old", tmp_path / ".export-step-00000003-new"
    old.mkdir()
    new.mkdir()
    os.utime(old, (time.time() - 120, time.time() - 120))
    sweep_pins(tmp_path)
    assert not old.exists() and new.is_dir()


def test_a_checkpoints_folder_on_another_disk_is_pinned_there(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """RUN/checkpoints linked to a bigger disk: the pin, made in RUN, could not hard-link across disks (EXDEV), and the
    export read the live checkpoint, which the run's rotation could remove while it was read."""
    folder, _ = run_with_checkpoints(tmp_path, [3])
    disk = (tmp_path / "big-disk").resolve()
    folder.checkpoints.rename(disk)
    folder.checkpoints.symlink_to(disk)
    real_link = os.link

    def one_disk(source: str, target: str, **options: object) -> None:
        if Path(source).resolve().is_relative_to(disk) != Path(target).resolve().is_relative_to(disk):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real_link(source, target, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "link", one_disk)
    checkpoint = folder.checkpoints / "step-00000003"
    with pinned(checkpoint) as files:
        assert files != checkpoint and files.parent == disk
        shutil.rmtree(checkpoint)  # the live run's rotation
        assert (files / "model.safetensors").is_file()
    assert not list(disk.iterdir())


def test_a_pin_beside_its_checkpoint_is_no_checkpoint_to_list_or_rotate(tmp_path: Path) -> None:
    """A pin holds its checkpoint's manifest: listed, it was a second checkpoint of its step, which the rotation
    removed while the export read it."""
    folder, _ = run_with_checkpoints(tmp_path, [3, 6])
    checkpointer = object.__new__(Checkpointer)
    one_kept = SimpleNamespace(saving=SimpleNamespace(keep_last_n=1))
    checkpointer.trainer = SimpleNamespace(profile=one_kept, emit=lambda event: None)
    checkpointer.folder = folder
    with pinned(folder.checkpoints / "step-00000003") as files:
        assert [path.name for _, path in complete_checkpoints(folder)] == ["step-00000003", "step-00000006"]
        checkpointer._rotate()
        assert [path.name for _, path in complete_checkpoints(folder)] == ["step-00000006"]
        assert (files / MANIFEST).is_file() and (files / "model.safetensors").is_file()


def test_an_exports_checkpoint_errors_name_the_checkpoint_not_its_pin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """They named RUN/checkpoints/.export-step-N-XXXX, gone by the time they were read, and told to chmod it."""
    import torch

    import engine.models.loading
    from engine.runs.checkpoints import CheckpointError

    folder, _ = run_with_checkpoints(tmp_path, [3])
    components = SimpleNamespace(unet=torch.nn.Linear(1, 1), family=SimpleNamespace(id="sd", denoiser_name="unet"))
    monkeypatch.setattr(engine.models.loading, "resolve_model_folder", lambda name, **options: tmp_path)
    monkeypatch.setattr(engine.models.loading, "load_components", lambda *args, **options: components)
    with pytest.raises(CheckpointError) as raised:
        export_checkpoint(folder.path)  # a full run's checkpoint without its unet/ (manifests only)
    assert str(raised.value).startswith(f"checkpoint {folder.checkpoints / 'step-00000003'} is incomplete: unet is missing")
    assert ".export-" not in str(raised.value)
