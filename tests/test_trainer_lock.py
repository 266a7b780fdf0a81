"""A trainer is known by the OS lock it holds on RUN/trainer.lock, wherever its pid means nothing (another PID namespace)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from engine.runs import held_file
from engine.runs.folder import RunFolder, RunFolderError, RunState, TrainerLock

_HOLD = ("import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_CREAT | os.O_RDWR); "
         "fcntl.flock(fd, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(3600)")


def _holder(lock: Path) -> subprocess.Popen:
    """A process holding ``lock`` as a trainer does, whose command names neither the worker nor the run folder: to this
    process it is as a trainer in a container is to the host."""
    process = subprocess.Popen([sys.executable, "-c", _HOLD, str(lock)], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline() == "locked\n"
    return process


def _gone_pid() -> int:
    """A pid no process has now: the trainer's pid in its own namespace, seen from outside it."""
    ended = subprocess.Popen(["true"])
    ended.wait()
    return ended.pid


def test_a_trainer_whose_pid_means_nothing_here_is_running_while_it_holds_the_lock(tmp_path: Path) -> None:
    """From the host, a run trained in a container read as crashed, and `resume` started a second trainer on it."""
    from engine.runs.launcher import RunLiveError, _prepare

    folder = RunFolder(tmp_path / "run").create()
    folder.write_state(RunState(pid=_gone_pid(), status="running", step=3, total_steps=10))
    holder = _holder(folder.lock)
    try:
        assert folder.status() == "running"
        with pytest.raises(RunFolderError, match="already running"):
            TrainerLock(folder).acquire()
        with pytest.raises(RunLiveError):
            _prepare(folder, SimpleNamespace(launch=SimpleNamespace(machine_rank=0)), "latest", None)  # type: ignore[arg-type]
    finally:
        holder.kill()
        holder.wait()
    assert folder.status() == "crashed"  # the kernel dropped its lock with it
    lock = TrainerLock(folder)
    lock.acquire()
    lock.release()


def test_a_run_folder_moved_while_its_trainer_runs_is_running(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path / "run").create()
    folder.write_state(RunState(pid=_gone_pid(), status="running"))
    holder = _holder(folder.lock)
    try:
        folder.path.rename(tmp_path / "moved")
        assert RunFolder(tmp_path / "moved").status() == "running"
    finally:
        holder.kill()
        holder.wait()


def test_this_process_knows_its_own_lock_without_opening_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where flock is emulated by POSIX locks (NFS), closing any descriptor of the file drops the process's lock: a
    trainer asking its own run's status would have let a second trainer start."""
    folder = RunFolder(tmp_path).create()
    lock = TrainerLock(folder)
    lock.acquire()
    try:
        folder.write_state(RunState(pid=_gone_pid(), status="running"))

        def no_opening(*args, **kwargs):
            raise AssertionError("the held lock file was opened")

        monkeypatch.setattr(held_file.os, "open", no_opening)
        assert folder.status() == "running"
    finally:
        monkeypatch.undo()
        lock.release()
    assert held_file.held(folder.lock) is None and not folder.lock.exists()


def test_a_trainer_that_locked_a_file_its_last_holder_removed_takes_the_new_one(tmp_path: Path,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A trainer ending removes its lock file, then unlocks it: one waiting on the removed file would hold nothing."""
    from engine.runs import folder as folder_module

    folder = RunFolder(tmp_path).create()
    folder.lock.write_text("")
    removed = os.open(folder.lock, os.O_RDWR)
    folder.lock.unlink()
    opens = [(removed, False)]
    real_open = folder_module._open_lock
    monkeypatch.setattr(folder_module, "_open_lock", lambda path: opens.pop() if opens else real_open(path))
    lock = TrainerLock(folder)
    lock.acquire()
    try:
        assert not opens and held_file.held(folder.lock) is True
        other = subprocess.run([sys.executable, "-c", "import fcntl, os, sys; fcntl.flock(os.open(sys.argv[1], os.O_RDONLY),"
                                " fcntl.LOCK_SH | fcntl.LOCK_NB)", str(folder.lock)], capture_output=True, text=True)
        assert "BlockingIOError" in other.stderr  # held for all to see, not only in this process's memory
    finally:
        lock.release()


def test_a_trainer_starting_while_its_run_is_looked_at_takes_the_lock(tmp_path: Path) -> None:
    """`dbtui attach` and the wizard test the lock now and then, each for an instant: that is no trainer."""
    import fcntl

    folder = RunFolder(tmp_path).create()
    folder.lock.write_text("")
    looking = os.open(folder.lock, os.O_RDONLY)
    fcntl.flock(looking, fcntl.LOCK_SH)  # a look held far longer than any is
    done = threading.Timer(0.3, os.close, (looking,))
    done.start()
    lock = TrainerLock(folder)
    try:
        lock.acquire()
        assert held_file.held(folder.lock) is True
    finally:
        done.join()
        lock.release()
