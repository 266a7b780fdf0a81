"""A crashed run's recorded pid, taken after a reboot by a process with no command line: a kernel thread or a zombie
read as the run's trainer, and the run as running for ever (stop acted on nothing, resume was refused)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from engine.runs.folder import RunFolder, RunState
from engine.runs.trainer_process import stat_fields
from tests.runs_helpers import wait_for


def _kernel_thread() -> int | None:
    """A kernel thread's pid (kthreadd's, 2, on most machines); None where none is seen (a container's own pids)."""
    for stat in sorted(Path("/proc").glob("[0-9]*/stat"), key=lambda path: int(path.parent.name)):
        try:
            if int(stat_fields(int(stat.parent.name))[6]) & 0x00200000:
                return int(stat.parent.name)
        except (OSError, ValueError):
            continue  # gone meanwhile
    return None


def _crashed_run_at(tmp_path: Path, pid: int) -> RunFolder:
    folder = RunFolder(tmp_path / "runs" / "crashed").create()
    folder.write_state(RunState(pid=pid, status="running", step=3, total_steps=10))
    return folder


def test_a_kernel_thread_at_a_crashed_runs_pid_is_not_its_trainer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kernel = _kernel_thread()
    if kernel is not None:
        assert Path(f"/proc/{kernel}/cmdline").read_bytes() == b""
        assert _crashed_run_at(tmp_path, kernel).status() == "crashed"
        return
    # No kernel thread is seen in a container's own pids: a live process whose command reads empty stands for one.
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        monkeypatch.setattr(Path, "read_bytes", lambda self: b"")
        assert _crashed_run_at(tmp_path, sleeper.pid).status() == "crashed"
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_zombie_at_a_crashed_runs_pid_is_not_its_trainer(tmp_path: Path) -> None:
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])  # exits, and is not waited for until the end
    try:
        wait_for(lambda: stat_fields(zombie.pid)[0] == "Z", timeout=30)
        assert Path(f"/proc/{zombie.pid}/cmdline").read_bytes() == b""
        assert _crashed_run_at(tmp_path, zombie.pid).status() == "crashed"
    finally:
        zombie.wait()
