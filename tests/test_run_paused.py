"""A trainer stopped by a signal (Ctrl-Z of a foreground `dbtui run`, `kill -STOP`) is alive and holds its run, so its
state said "running" everywhere, with a step that never moved: `dbtui runs`, `dbtui attach` and the wizard's dashboard
now say it is paused and how to continue it, and `dbtui stop` that it acts only once continued."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dbtui.cli import main
from engine.events import Warning
from engine.runs.folder import RunFolder, RunState
from engine.runs.paused import PauseNotice, paused_trainer
from engine.runs.trainer_process import stopped_by_signal

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="a stopped process is told by /proc")


def _running(tmp_path: Path, pid: int) -> RunFolder:
    folder = RunFolder(tmp_path / "runs" / "long").create()
    folder.events.write_text("", encoding="utf-8")
    folder.write_state(RunState(pid=pid, status="running", step=44, total_steps=2000, heartbeat=time.time(),
                                last_loss=0.1))
    return folder


def _stop(pid: int, stopped: bool) -> None:
    os.kill(pid, signal.SIGSTOP if stopped else signal.SIGCONT)
    deadline = time.monotonic() + 10
    while stopped_by_signal(pid) != stopped and time.monotonic() < deadline:
        time.sleep(0.01)


def test_dbtui_runs_says_a_paused_trainer_and_how_to_continue_it(tmp_path: Path, capsys, monkeypatch, trainer_of) -> None:
    pid = trainer_of(tmp_path / "runs" / "long")
    folder = _running(tmp_path, pid)
    monkeypatch.setenv("COLUMNS", "300")
    _stop(pid, True)
    assert paused_trainer(folder) == pid and folder.status() == "running"  # alive: no other command treats it otherwise
    assert main(["runs", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    assert " paused " in out and " running " not in out and f"`kill -CONT {pid}`" in out and "`fg`" in out
    assert main(["runs", str(tmp_path / "runs"), "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert (row["status"], row["paused"]) == ("running", True)  # a script's status word is unchanged
    assert main(["stop", str(folder.path)]) == 0
    assert f"but its trainer (pid {pid}) is paused" in capsys.readouterr().out
    _stop(pid, False)
    assert paused_trainer(folder) is None
    assert main(["runs", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    assert " running " in out and " paused " not in out and "kill -CONT" not in out


def test_a_followed_run_says_its_pause_once_each_time(tmp_path: Path, trainer_of) -> None:
    pid = trainer_of(tmp_path / "runs" / "long")
    said: list = []
    notice = PauseNotice(_running(tmp_path, pid), said.append, every=0.0)
    notice()
    _stop(pid, True)
    notice()
    notice()
    assert len(said) == 1 and isinstance(said[0], Warning) and f"kill -CONT {pid}" in said[0].message
    _stop(pid, False)
    notice()
    _stop(pid, True)
    notice()
    assert len(said) == 2


def test_a_stopped_process_that_is_not_the_runs_trainer_is_no_pause(tmp_path: Path) -> None:
    """After a reboot the state's pid may be another process's: the run is crashed, not paused."""
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
    try:
        _stop(other.pid, True)
        assert stopped_by_signal(other.pid) and paused_trainer(_running(tmp_path, other.pid)) is None
    finally:
        other.kill()
        other.wait()
    assert not stopped_by_signal(other.pid)  # gone: no /proc entry, nothing said


async def test_the_wizards_attach_list_says_a_paused_run_too(tmp_path: Path, trainer_of) -> None:
    """`dbtui runs` said "paused", while the wizard's Attach list, its twin, still said "running" at a step that never
    moved."""
    from textual.widgets import OptionList

    from dbtui.app import make_app
    from dbtui.engine_facade import RealEngine
    from dbtui.screens.attach import AttachScreen
    from dbtui.session import Session
    from wizard_steps import settle

    pid = trainer_of(tmp_path / "runs" / "long")
    _running(tmp_path, pid)
    _stop(pid, True)
    engine = RealEngine()
    [run] = engine.list_runs(str(tmp_path / "runs"))
    assert run.status == "running" and run.paused  # the status word others read is unchanged
    app = make_app(engine, Session.for_demo(), image_renderer="none")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = AttachScreen(engine, str(tmp_path / "runs"))
        app.push_screen(screen)
        await settle(pilot)
        [option] = screen.query_one(OptionList).options
        assert str(option.prompt).split()[:2] == ["long", "paused"], option.prompt
    _stop(pid, False)
    assert not engine.list_runs(str(tmp_path / "runs"))[0].paused


@pytest.mark.parametrize("asked", ["sample", "save", "stop"])
def test_a_request_to_a_paused_trainer_is_named_in_its_note(asked: str, tmp_path: Path, capsys, trainer_of) -> None:
    """`dbtui sample` on a paused run said the trainer would not act on "a stop or save", not on the sample it asked."""
    pid = trainer_of(tmp_path / "runs" / "long")
    folder = _running(tmp_path, pid)
    _stop(pid, True)
    assert main([asked, str(folder.path)]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert f"nor acts on the {asked} just asked of it, until `kill -CONT {pid}`" in said, said


@pytest.mark.parametrize(("asked", "words"), [("sample", "Sample requested…"), ("save", "Checkpoint requested…"),
                                              ("stop", "Stopping after a checkpoint…")])
def test_the_dashboards_request_to_a_paused_trainer_says_it_waits_for_kill_cont(asked: str, words: str, tmp_path: Path,
                                                                                 trainer_of) -> None:
    """`dbtui save` on a paused trainer said it acts only once continued; the wizard's dashboard, its twin, said
    "Checkpoint requested…" (or "Stopping after a checkpoint…") alone, for a request that waits on `kill -CONT`."""
    from dbtui.engine_facade import RealEngine
    from dbtui.screens.run_life import ask

    pid = trainer_of(tmp_path / "runs" / "long")
    folder = _running(tmp_path, pid)
    _stop(pid, True)
    said = ask(RealEngine(), folder.path, asked, stepped=True)
    assert said.startswith(words) and f"nor acts on the {asked} just asked of it, until `kill -CONT {pid}`" in said, said
    assert (folder.control / asked).exists()
