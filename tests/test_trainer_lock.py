"""A trainer is known by the OS lock it holds on RUN/trainer.lock, wherever its pid means nothing (another PID namespace)."""

from __future__ import annotations

import errno
import fcntl
import os
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from engine.runs import held_file, trainer_lock
from engine.support import os_lock
from engine.runs.folder import RunFolder, RunFolderError, RunState
from engine.runs.trainer_lock import TrainerLock

_HOLD = ("import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_CREAT | os.O_RDWR); "
         "fcntl.flock(fd, fcntl.LOCK_EX); os.write(fd, sys.argv[2].encode()); print('locked', flush=True); time.sleep(3600)")


def _holder(lock: Path, pid: int) -> subprocess.Popen:
    """A process holding ``lock`` as a trainer does and naming ``pid`` in it, whose command names neither the worker
    nor the run folder: to this process it is as a trainer in a container is to the host."""
    process = subprocess.Popen([sys.executable, "-c", _HOLD, str(lock), str(pid)], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline() == "locked\n"
    return process


def _gone_pid() -> int:
    """A pid no process has now: the trainer's pid in its own namespace, seen from outside it."""
    ended = subprocess.Popen(["true"])
    ended.wait()
    return ended.pid


@pytest.fixture
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    """A held lock is refused after 0.1 s instead of 1 s."""
    monkeypatch.setattr(os_lock, "TAKE_WAIT_S", 0.1)


def test_a_trainer_whose_pid_means_nothing_here_is_running_while_it_holds_the_lock(tmp_path: Path, quick) -> None:
    """From the host, a run trained in a container read as crashed, and `resume` started a second trainer on it."""
    from engine.runs.launcher import _prepare
    from engine.runs.start_refusals import RunLiveError

    folder = RunFolder(tmp_path / "run").create()
    pid = _gone_pid()
    folder.write_state(RunState(pid=pid, status="running", step=3, total_steps=10))
    holder = _holder(folder.lock, pid)
    try:
        assert folder.status() == "running"
        with pytest.raises(RunFolderError, match=f"a trainer \\(pid {pid}\\) is already running.* delete .*trainer.lock"):
            TrainerLock(folder).acquire()
        with pytest.raises(RunLiveError):
            _prepare(folder, SimpleNamespace(launch=SimpleNamespace(machine_rank=0)), "latest", None)  # type: ignore[arg-type]
    finally:
        holder.kill()
        holder.wait()
    assert folder.status() == "crashed"  # the kernel dropped its lock with it
    lock = TrainerLock(folder)
    lock.acquire()
    assert folder.lock.read_text() == str(os.getpid())
    lock.release()
    assert not folder.lock.exists()


def test_a_run_folder_seen_under_another_path_is_running(tmp_path: Path) -> None:
    """A container's mount of the folder, or the folder moved: its trainer's command names another path."""
    folder = RunFolder(tmp_path / "run").create()
    pid = _gone_pid()
    folder.write_state(RunState(pid=pid, status="running"))
    holder = _holder(folder.lock, pid)
    try:
        folder.path.rename(tmp_path / "moved")
        assert RunFolder(tmp_path / "moved").status() == "running"
    finally:
        holder.kill()
        holder.wait()


def test_this_process_never_opens_its_own_lock_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where flock is emulated by POSIX locks (NFS), closing any descriptor of the file drops the process's lock: a
    trainer asking its own run's status, or reading the pid of a lock file it had just locked, let a second start."""
    real_open = os.open
    folder = RunFolder(tmp_path).create()
    folder.lock.write_text("")  # a crash's, left empty: the common case of a resume

    opened: list[int] = []

    def opened_once(path, flags, *mode):
        fd = real_open(path, flags, *mode)
        if Path(path) == folder.lock:
            opened.append(fd)
        return fd

    lock = TrainerLock(folder)
    for module in (held_file, trainer_lock):
        monkeypatch.setattr(module, "os", SimpleNamespace(**{**vars(os), "open": opened_once}))
    monkeypatch.setattr(trainer_lock.time, "sleep", lambda seconds: None)
    lock.acquire()
    try:
        folder.write_state(RunState(pid=_gone_pid(), status="running"))
        assert folder.status() == "running"
        assert len(opened) == 1, "the locked file was opened again"
    finally:
        lock.release()
    assert held_file.held(folder.lock) is None and not folder.lock.exists()


def test_a_trainer_that_locked_a_file_its_last_holder_removed_takes_the_new_one(tmp_path: Path,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A trainer ending removes its lock file, then unlocks it: one waiting on the removed file would hold nothing."""
    folder = RunFolder(tmp_path).create()
    folder.lock.write_text("1")
    removed = os.open(folder.lock, os.O_RDWR)
    folder.lock.unlink()
    opens = [(removed, False)]
    real_open = trainer_lock._open_lock
    monkeypatch.setattr(trainer_lock, "_open_lock", lambda path: opens.pop() if opens else real_open(path))
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
    folder = RunFolder(tmp_path).create()
    folder.lock.write_text(str(_gone_pid()))
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


def test_a_link_in_the_locks_place_is_neither_followed_nor_written(tmp_path: Path) -> None:
    """The lock file was opened through a link and the link's target truncated and given the trainer's pid."""
    victim = tmp_path / "notes.txt"
    victim.write_text("the user's own")
    folder = RunFolder(tmp_path / "run").create()
    folder.lock.symlink_to(victim)
    assert held_file.held(folder.lock) is None
    lock = TrainerLock(folder)
    lock.acquire()
    try:
        assert victim.read_text() == "the user's own" and not folder.lock.is_symlink()
    finally:
        lock.release()


def test_a_lock_that_cannot_be_written_leaves_nothing_open_and_says_why(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A full disk at the pid's write raised OSError with the lock still held and its descriptor open: a second try in
    the same process then said "already running"."""
    folder = RunFolder(tmp_path).create()

    def full(fd, data, offset):
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patched:
        patched.setattr(trainer_lock.os, "pwrite", full)
        with pytest.raises(RunFolderError, match="the disk is full"):
            TrainerLock(folder).acquire()
    assert held_file.held(folder.lock) is False
    lock = TrainerLock(folder)
    lock.acquire()
    lock.release()


def test_a_crashed_trainers_lock_file_this_user_cannot_write_is_taken_over(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Left by a trainer run as root (a container's), it stopped every resume with "permission denied"."""
    folder = RunFolder(tmp_path).create()
    folder.lock.write_text(str(_gone_pid()))
    real_open = os.open
    refused: list[int] = []

    def not_ours(path, flags, *mode):
        if Path(path) == folder.lock and flags & os.O_RDWR and not flags & os.O_EXCL and not refused:
            refused.append(flags)
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_open(path, flags, *mode)

    monkeypatch.setattr(trainer_lock, "os", SimpleNamespace(**{**vars(os), "open": not_ours}))
    lock = TrainerLock(folder)
    lock.acquire()
    assert refused and folder.lock.read_text() == str(os.getpid()) and held_file.held(folder.lock) is True
    lock.release()


def test_a_run_folder_this_user_may_not_write_is_said_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Creating the lock file refused, with no file there to clear: "other trainers keep taking it; try again", where
    no trainer was involved and trying again changed nothing."""
    folder = RunFolder(tmp_path).create()
    real_open = os.open

    def read_only_folder(path, flags, *mode):
        if Path(path) == folder.lock and flags & os.O_CREAT:
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_open(path, flags, *mode)

    monkeypatch.setattr(trainer_lock, "os", SimpleNamespace(**{**vars(os), "open": read_only_folder}))
    with pytest.raises(RunFolderError, match=f"may not write in the run folder {tmp_path}; make it writable"):
        TrainerLock(folder).acquire()
    assert not folder.lock.exists()

def test_the_trainer_holds_its_lock_before_its_imports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """It took the lock after seconds of imports (and, on several machines, their meeting): meanwhile only the
    launcher's pid said the run was alive, which means nothing from another PID namespace."""
    from engine.runs import worker

    folder = RunFolder(tmp_path).create()
    seen: list[bool | None] = []

    def train(args, folder_, lock, asked_to_stop) -> int:
        seen.append(held_file.held(folder.lock))
        return 0

    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.setattr(worker, "_train", train)
    assert worker.main([str(folder.path)]) == 0
    monkeypatch.setenv("RANK", "1")  # another process of a multi-process run: machine 0's rank 0 holds it
    assert worker.main([str(folder.path)]) == 0
    assert seen == [True, None] and not folder.lock.exists()
