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
    # No kernel thread is seen in a container's own pids: a live process whose stat says kernel thread stands for one.
    import engine.runs.trainer_process as trainer_process

    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        monkeypatch.setattr(trainer_process, "stat_fields", lambda pid: ["S"] + ["0"] * 5 + [str(0x00200000)])
        assert _crashed_run_at(tmp_path, sleeper.pid).status() == "crashed"
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_trainer_just_started_whose_command_reads_empty_yet_is_alive(tmp_path: Path, monkeypatch) -> None:
    """For a moment after Popen the kernel has not the new program's arguments yet: read then as crashed, a second
    launch could start another trainer on the run."""
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        real = Path.read_bytes
        monkeypatch.setattr(Path, "read_bytes", lambda self: b"" if self.name == "cmdline" else real(self))
        assert _crashed_run_at(tmp_path, sleeper.pid).status() == "running"
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_process_name_that_is_not_utf8_is_read(tmp_path: Path) -> None:
    """After a reboot a run's pid may belong to any process; a name of other bytes crashed `dbtui runs`."""
    named = subprocess.Popen([sys.executable, "-c", "import ctypes, time; ctypes.CDLL(None).prctl(15, b'\\xff) b', 0, 0, 0); "
                              "print(flush=True); time.sleep(60)"], stdout=subprocess.PIPE)
    try:
        named.stdout.readline()
        assert b"\xff" in Path(f"/proc/{named.pid}/stat").read_bytes()
        assert stat_fields(named.pid)[0] in "RS"
        assert _crashed_run_at(tmp_path, named.pid).status() == "crashed"  # alive, but no trainer of this run
    finally:
        named.kill()
        named.wait()


def test_a_zombie_at_a_crashed_runs_pid_is_not_its_trainer(tmp_path: Path) -> None:
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])  # exits, and is not waited for until the end
    try:
        wait_for(lambda: stat_fields(zombie.pid)[0] == "Z", timeout=30)
        assert Path(f"/proc/{zombie.pid}/cmdline").read_bytes() == b""
        assert _crashed_run_at(tmp_path, zombie.pid).status() == "crashed"
    finally:
        zombie.wait()
