"""The lock the first trainer of a machine other than 0 holds for its part of the run (logs/profile-machine-N.lock):
never taken through a link, and what keeps it from being taken is said as a dbtui error, not a traceback."""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import engine.runs.meeting as meeting
from engine.runs.folder import RunFolderError
from engine.runs.held_file import held
from engine.runs.start_refusals import MachineLiveError
from engine.runs.meeting import MachineTrainedError, hold_machine_lock, machine_trainer


@contextmanager
def held_by_another(lock: Path, pid: bytes = b"") -> Iterator[None]:
    """``lock`` locked through a descriptor of its own, as another process's trainer holds it, naming ``pid``."""
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.write(fd, pid)
        yield
    finally:
        os.close(fd)


def test_a_link_in_the_locks_place_is_refused_and_its_target_left_alone(tmp_path: Path) -> None:
    """It was followed: the target's content was written over with the trainer's pid, and the readers, which skip a
    link, saw no lock, so a second launch of the machine was not refused."""
    target = tmp_path / "precious.txt"
    target.write_text("important data\n", encoding="utf-8")
    lock = tmp_path / "profile-machine-1.lock"
    lock.symlink_to(target)
    with pytest.raises(RunFolderError, match=f"cannot take the lock {lock}: something other than a file"):
        hold_machine_lock(lock)
    assert target.read_text(encoding="utf-8") == "important data\n"


def test_a_lock_that_cannot_be_written_is_a_dbtui_error_and_leaves_nothing_open(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A full disk escaped as an OSError traceback, and the lock stayed held by the process that had failed."""
    def full_disk(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(meeting, "sign", full_disk)
    lock = tmp_path / "profile-machine-1.lock"
    with pytest.raises(RunFolderError, match="the disk is full"):
        hold_machine_lock(lock)
    assert held(lock) is False  # its descriptor closed: a leaked one would keep it locked


def test_a_lock_file_this_user_may_not_write_is_named_and_a_resume_is_told_what_a_resume_can_do(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """Permission denied on the lock file itself blamed its folder ("cannot use the folder …/logs: make it writable"),
    and a resume was told to set saving.output_dir, which moves no run."""
    def refused(*args, **kwargs) -> int:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(meeting.os, "open", refused)
    lock = tmp_path / "profile-machine-1.lock"
    # Only machine N takes this lock, whose `dbtui resume` is refused, or trains machine 0's part (it was told so).
    with pytest.raises(RunFolderError, match="cannot use the folder .*copy the run folder to a folder you can write to, "
                                             "under its own name, and resume this machine's part from there") as said:
        hold_machine_lock(lock, resumed=True)
    assert "`dbtui run PROFILE --resume` with `--set saving.output_dir=`" in str(said.value)
    assert "dbtui resume COPY" not in str(said.value)
    from engine.runs import worker

    monkeypatch.setenv("LOCAL_RANK", "0")
    run = tmp_path / "run"
    assert worker.main([str(run), "--resume", "latest", "--profile", str(run / "profile-machine-1.toml")]) == 1
    assert "resume this machine's part from there" in capsys.readouterr().err  # the trainer says a resume's words
    lock.write_text("", encoding="utf-8")  # another user's, as root cannot be refused it here
    with pytest.raises(RunFolderError) as said:
        hold_machine_lock(lock, resumed=True)
    assert str(said.value).startswith(f"cannot take the lock {lock}: this user may not write the lock file itself")


def test_a_trainer_that_cannot_take_its_machines_lock_says_why(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """A folder in the lock's place (or a lock this user may not open) ended machine N's trainer with a traceback."""
    from engine.runs import worker

    def train(*args) -> int:
        raise AssertionError("trained without its machine's lock")

    run = tmp_path / "run"
    (run / "logs" / "profile-machine-1.lock").mkdir(parents=True)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setattr(worker, "_train", train)
    assert worker.main([str(run), "--profile", str(run / "profile-machine-1.toml")]) == 1
    assert "dbtui trainer: cannot take the lock" in capsys.readouterr().err


def test_a_lock_whose_pid_is_not_yet_written_sends_nobody_to_kill_0(tmp_path: Path) -> None:
    """Held between its lock and its pid (or with a pid that cannot be read), it was "pid 0" and "`kill 0`", which
    signals the user's own process group."""
    lock = tmp_path / "profile-machine-1.lock"
    with held_by_another(lock):
        assert machine_trainer(lock) == 0
        said = str(MachineLiveError(tmp_path, 1, 0, launcher_ended=True))
        with pytest.raises(MachineTrainedError) as refused:
            hold_machine_lock(lock)
    for message in (said, str(refused.value)):
        assert "its pid not yet written" in message and "pid 0" not in message and "kill 0" not in message


def test_stop_on_another_machine_names_the_trainers_a_killed_launcher_left(tmp_path: Path) -> None:
    """Only the launcher's pid file was read: with the launcher killed hard and its trainers training on, `dbtui stop`
    there said that no trainer of it ran."""
    from dbtui.cli.cmd_runs import find_run
    from engine.errors import DbtuiError

    run = tmp_path / "run"
    (run / "logs").mkdir(parents=True)
    (run / "profile-machine-1.toml").write_text("", encoding="utf-8")
    lock = run / "logs" / "profile-machine-1.lock"
    with held_by_another(lock, b"4242"), pytest.raises(DbtuiError) as refused:
        find_run(str(run), "runs")
    said = str(refused.value)
    assert "Trainers whose launcher has ended run it (the first: pid 4242), on this machine or" in said
    assert "`kill 4242` and this run's other trainers there" in said
    with held_by_another(lock), pytest.raises(DbtuiError) as refused:
        find_run(str(run), "runs")
    said = str(refused.value)
    assert "the first has not written its pid yet" in said and "kill 0" not in said
