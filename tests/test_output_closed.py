"""`dbtui run P | head` ended 0, "done", while the trainer trained on unwatched: a closed output while a command
follows a live run is said on stderr with how to watch it, and ends 141; where nothing goes on it still ends 0."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.events import RunStarted, StepEnded
from engine.runs.folder import RunFolder, RunState

ROOT = Path(__file__).resolve().parents[1]


def _run_folder(path: Path, status: str, pid: int) -> RunFolder:
    folder = RunFolder(path).create()
    steps = [StepEnded(step=step, total_steps=400, epoch=0, loss=0.1, smoothed_loss=0.1, lr=1e-6, it_per_s=1.0,
                       eta_s=None) for step in range(1, 21)]
    events = [RunStarted(run_dir=str(folder.path), profile={}, hardware={}, versions={}, total_steps=400), *steps]
    folder.events.write_text("".join(event.to_json() + "\n" for event in events), encoding="utf-8")
    folder.write_state(RunState(pid=pid, status=status, step=20, total_steps=400, heartbeat=time.time(),
                                last_loss=0.1, started=time.time() - 60))
    return folder


def _into_a_closed_pipe(*args: str) -> subprocess.CompletedProcess[str]:
    read, write = os.pipe()
    os.close(read)  # `| head` that has read all it wanted
    try:
        return subprocess.run([sys.executable, "-m", "dbtui", *args], cwd=ROOT, stdout=write, stderr=subprocess.PIPE,
                              text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    finally:
        os.close(write)


def test_attach_into_a_closed_pipe_says_the_live_run_goes_on(tmp_path: Path, trainer_of) -> None:
    folder = _run_folder(tmp_path / "runs" / "live", "running", 0)
    folder.write_state(RunState(**{**folder.read_state().__dict__, "pid": trainer_of(folder.path)}))
    assert folder.is_live()
    result = _into_a_closed_pipe("attach", str(folder.path), "--plain")
    assert result.returncode == 141, result.stderr
    assert "the run goes on in the background" in result.stderr and f"dbtui attach {folder.path}" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_closed_pipe_where_nothing_goes_on_still_ends_0(tmp_path: Path) -> None:
    """`dbtui runs | head`, and the replay of a run that has ended: the reader had what it wanted."""
    folder = _run_folder(tmp_path / "runs" / "stopped", "stopped", os.getpid())
    assert not folder.is_live()
    for args in (("runs", str(folder.path.parent)), ("attach", str(folder.path), "--plain")):
        result = _into_a_closed_pipe(*args)
        assert result.returncode == 0, (args, result.stderr)
        assert "goes on" not in result.stderr and "Traceback" not in result.stderr, (args, result.stderr)


def test_run_and_resume_whose_output_closes_while_they_follow_say_the_run_goes_on(
        tmp_path: Path, trainer_of, monkeypatch, capsys) -> None:
    """What `dbtui run` and `resume` follow once their trainer is started (show_started_run)."""
    from types import SimpleNamespace

    from dbtui.cli import watch
    from dbtui.cli.boundary import run_guarded

    folder = _run_folder(tmp_path / "runs" / "live", "running", 0)
    folder.write_state(RunState(**{**folder.read_state().__dict__, "pid": trainer_of(folder.path)}))

    def closed(*args, **kwargs):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(watch, "watch", closed)
    started = SimpleNamespace(folder=folder, main_machine=True, from_start=False, set_aside=[], process=None,
                              events_offset=0, log_offset=0, own_session=False)
    code = run_guarded(lambda: watch.show_started_run(started, "live", plain=True, every=1, detach=False), ["run"])
    assert code == 141
    assert f"`dbtui attach {folder.path}` watches it" in capsys.readouterr().err


class _ClosedPipe:
    """A stdout whose reader is gone: every write fails as a pipe's does."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


@pytest.mark.parametrize("detach", [False, True])
def test_resume_whose_output_closed_at_its_first_line_says_the_run_goes_on(
        tmp_path: Path, trainer_of, monkeypatch, capsys, detach: bool) -> None:
    """`dbtui resume RUN | true` ended 0 without a word: --detach's folder, and the first lines a followed run says, were
    said once the trainer was started, outside what watched for a closed output, and the run trained on unwatched (the
    "resuming …" line itself is said before the start: tests/test_output_closed_before_start.py)."""
    from types import SimpleNamespace

    from dbtui.cli import main
    from engine.runs import launcher

    folder = _run_folder(tmp_path / "runs" / "live", "stopped", os.getpid())
    folder.profile.write_text((ROOT / "profiles" / "tiny-demo.toml").read_text(encoding="utf-8"), encoding="utf-8")
    # Followed, its first line is a resume's branch note: one without it first said the watch's, already guarded.
    aside = [] if detach else [folder.checkpoints / "step-00000010"]
    started = SimpleNamespace(folder=folder, main_machine=True, from_start=False, set_aside=aside,
                              process=SimpleNamespace(pid=0), events_offset=0, log_offset=0, own_session=False)

    def start_run(*args, **kwargs):
        folder.write_state(RunState(**{**folder.read_state().__dict__, "status": "running",
                                       "pid": trainer_of(folder.path)}))
        return started

    monkeypatch.setattr(launcher, "start_run", start_run)
    monkeypatch.setattr(sys, "stdout", _ClosedPipe())
    assert main(["resume", str(folder.path), "--plain", *(["--detach"] if detach else [])]) == 141
    assert f"`dbtui attach {folder.path}` watches it" in capsys.readouterr().err
