"""`dbtui runs` and the run a bare `dbtui attach` picks: which run is the newest, what a finished run whose state file
is lost is called, and a listing that stays readable in a narrow terminal."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from dbtui.cli import main
from dbtui.cli.cmd_runs import find_run
from dbtui.cli.runs_table import TABLE_WIDTH
from dbtui.engine_facade import RunSummary
from engine.events import RunFinished, RunStarted
from engine.runs.folder import RunFolder, RunState, list_runs

if TYPE_CHECKING:
    from textual.pilot import Pilot

    from dbtui.screens.attach import AttachScreen


def _run(path: Path, status: str, step: int, total: int, *, heartbeat: float = 0.0, end: str | None = None) -> RunFolder:
    folder = RunFolder(path).create()
    lines = [RunStarted(run_dir=str(folder.path), profile={}, hardware={}, versions={}, total_steps=total)]
    if end is not None:
        lines.append(RunFinished(step=step, outputs={}, seconds=1.0, status=end))
    folder.events.write_text("".join(event.to_json() + "\n" for event in lines), encoding="utf-8")
    if status:
        folder.write_state(RunState(pid=os.getpid(), status=status, step=step, total_steps=total, heartbeat=heartbeat,
                                    last_loss=0.1234, started=heartbeat))
    return folder


def _age(folder: RunFolder, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(folder.events, (then, then))


def test_the_newest_run_is_the_one_that_trained_last_not_the_folder_touched_last(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A report or an export of an old run changed its folder's time, and made it the one `dbtui attach` picked."""
    now = time.time()
    old = _run(tmp_path / "runs" / "old", "stopped", 5, 10, heartbeat=now - 86400, end="stopped")
    new = _run(tmp_path / "runs" / "new", "stopped", 5, 10, heartbeat=now - 600, end="stopped")
    stateless = _run(tmp_path / "runs" / "stateless", "", 5, 10, end="stopped")
    damaged = _run(tmp_path / "runs" / "damaged", "stopped", 5, 10, heartbeat=now + 1e9, end="stopped")  # a time to come
    _age(stateless, 3600)
    _age(damaged, 7200)
    os.utime(old.path)  # `dbtui report` wrote its report.html just now
    assert [run.path.name for run in list_runs(tmp_path / "runs")] == ["new", "stateless", "damaged", "old"]
    assert find_run(None, str(tmp_path / "runs")).path == new.path  # what `dbtui attach` with no run follows
    monkeypatch.setenv("COLUMNS", "300")
    assert main(["runs", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    assert out.index("runs/new") < out.index("runs/old") and "1d ago" in out and "1h ago" in out


def test_a_finished_run_whose_state_file_is_lost_is_said_finished(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """`dbtui stop` offered such a run a resume, and `dbtui runs` listed it as unknown or crashed."""
    from dbtui.engine_facade import RealEngine

    lost = _run(tmp_path / "runs" / "lost", "", 3, 3, end="finished")
    stale = _run(tmp_path / "runs" / "stale", "running", 2, 3, end="finished")  # killed before it rewrote its state
    (stale.path / "profile.toml").write_text("", encoding="utf-8")
    again = _run(tmp_path / "runs" / "again", "", 3, 3, end="finished")
    with again.events.open("a", encoding="utf-8") as file:  # resumed since: no longer finished
        file.write(RunStarted(run_dir=str(again.path), profile={}, hardware={}, versions={}, total_steps=6).to_json() + "\n")
    for folder in (lost, stale):
        assert folder.status() == "finished"
        assert main(["stop", str(folder.path)]) == 2
        err = capsys.readouterr().err
        assert "(status: finished); it finished: its outputs are in" in err and "resume" not in err
    assert again.status() == "crashed"  # its events end with a start, and no trainer holds the folder
    summaries = {run.path.name: run.status for run in RealEngine().list_runs(str(tmp_path / "runs"))}
    assert summaries == {"lost": "finished", "stale": "finished", "again": "crashed"}
    monkeypatch.setenv("COLUMNS", "300")
    assert main(["runs", str(tmp_path / "runs")]) == 0
    rows = {name: line for line in capsys.readouterr().out.splitlines() for name in summaries if f"runs/{name} " in line}
    assert [rows[name].split("│")[2].strip() for name in ("lost", "stale", "again")] == ["finished", "finished", "crashed"]


def test_a_run_without_its_state_file_is_listed_as_its_events_tell(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Its state.json deleted or left out of a copy, a run was listed `unknown` at step `-`, however its events ended."""
    from dbtui.engine_facade import RealEngine
    from engine.events import RunFailed, StepEnded

    for name, end in (("stopped", RunFinished(step=2, outputs={}, seconds=1.0, status="stopped")),
                      ("failed", RunFailed(reason="out of memory", step=2)), ("killed", None)):
        folder = _run(tmp_path / "runs" / name, "", 0, 10)
        steps = [StepEnded(step=step, total_steps=10, epoch=0, loss=0.25 * step, smoothed_loss=0.5, lr=1e-4,
                           it_per_s=1.0, eta_s=1.0) for step in (1, 2)]
        with folder.events.open("a", encoding="utf-8") as file:
            file.write("".join(event.to_json() + "\n" for event in [*steps, *([end] if end else [])]))
    monkeypatch.setenv("COLUMNS", "300")
    assert main(["runs", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    rows = {name: [cell.strip() for cell in line.split("│")[2:5]] for line in out.splitlines()
            for name in ("stopped", "failed", "killed") if f"runs/{name} " in line and "│" in line}
    assert rows == {"stopped": ["stopped", "2/10", "0.5000"], "failed": ["failed", "2/10", "0.5000"],
                    "killed": ["crashed", "2/10 · resumes from the start", "0.5000"]}
    # None saved a checkpoint: the stopped and failed ones' resume also trains from step 0.
    assert "failed, stopped saved no checkpoint: `dbtui resume` trains them from step 0" in out
    summaries = {run.path.name: (run.status, run.step, run.total_steps) for run in RealEngine().list_runs(str(tmp_path / "runs"))}
    assert summaries == {"stopped": ("stopped", 2, 10), "failed": ("failed", 2, 10), "killed": ("crashed", 2, 10)}


def test_a_run_without_its_state_file_whose_trainer_holds_the_folder_is_live(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Listed "running" by its events and its lock, it was not live to `dbtui stop` ("no trainer is running ... (status:
    running); `dbtui resume` continues it") nor to the launcher, which would start a second trainer in its folder."""
    from engine.runs.trainer_lock import TrainerLock

    folder = _run(tmp_path / "runs" / "live", "", 0, 10)
    lock = TrainerLock(folder)
    lock.acquire()
    try:
        assert folder.status() == "running" and folder.is_live()
        assert main(["stop", str(folder.path)]) == 0
        assert "asked the trainer" in capsys.readouterr().out
    finally:
        lock.release()
    assert folder.status() == "crashed" and not folder.is_live()


@pytest.mark.parametrize("columns", [40, 60, 80])
def test_runs_keeps_each_status_and_step_whole_in_a_narrow_terminal(
        columns: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """At 40 columns it showed `st…`, `29/…` and `0.…`, the path folded over four lines; at 60 `finish…`."""
    runs = tmp_path / "runs"
    _run(runs / "a-run-name-long-enough-to-need-folding", "finished", 30, 30, heartbeat=time.time(), end="finished")
    _run(runs / "stopped-one", "stopped", 1200, 4000, heartbeat=time.time(), end="stopped")
    monkeypatch.setenv("COLUMNS", str(columns))
    _a_terminal(monkeypatch)
    assert main(["runs", str(runs)]) == 0
    out = capsys.readouterr().out
    for word in ("finished", "30/30", "stopped", "1200/4000"):
        assert word in out, out
    if columns >= TABLE_WIDTH:  # below, a path has a line of its own, whole for copying however long
        assert max(len(line) for line in out.splitlines()) <= columns


def _a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """`dbtui runs` printing to a terminal (without colours, to measure its lines)."""
    import dbtui.console

    make_console = dbtui.console.make_console
    monkeypatch.setattr(dbtui.console, "make_console", lambda **options: make_console(
        force_terminal=True, color_system=None, **options))


def test_piped_runs_keep_each_path_on_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """`COLUMNS=80 dbtui runs | cat` folded a long run path every few letters down the run column, to be put together
    again by hand for `dbtui attach`; a file or a pipe has no width to keep to."""
    runs = tmp_path / "a-folder-name-long-enough-to-need-folding" / "and-more-of-it" / "runs"
    folder = _run(runs / "a-run-name-long-enough-too", "stopped", 1200, 4000, heartbeat=time.time(), end="stopped")
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["runs", str(runs)]) == 0
    [row] = [line for line in capsys.readouterr().out.splitlines() if str(folder.path) in line]
    assert [cell.strip() for cell in row.split("│")[1:4]] == [str(folder.path), "stopped", "1200/4000"]


def test_a_finished_run_resumed_and_killed_in_its_set_up_is_crashed(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A resume writes its state ("starting") before the models load, and its RunStarted only after: killed there (the
    OOM killer), the events still end with the earlier finish, and the run was listed `finished 100/200` with no
    resume offered."""
    from dbtui.engine_facade import RealEngine

    folder = _run(tmp_path / "runs" / "r", "", 100, 100, end="finished")
    (folder.path / "profile.toml").write_text("", encoding="utf-8")
    folder.write_state(RunState(pid=os.getpid(), status="starting", step=100, total_steps=200, heartbeat=time.time() + 5,
                                started=time.time() + 5))  # a process that is no trainer: killed
    assert folder.status() == "crashed" and folder.finished_step() is None
    assert [run.status for run in RealEngine().list_runs(str(tmp_path / "runs"))] == ["crashed"]
    assert main(["stop", str(folder.path)]) == 2
    # Not "`dbtui resume` continues it": resume refuses an empty profile.toml.
    assert "(status: crashed). Its profile.toml is empty, which `dbtui resume` trains" in capsys.readouterr().err
    assert main(["attach", str(folder.path), "--plain"]) == 1
    assert "gone without a last word (crashed)" in capsys.readouterr().err
    folder.write_state(RunState(pid=os.getpid(), status="running", step=100, total_steps=100, started=1.0))
    assert folder.status() == "finished"  # killed after its finish, before it rewrote its state: finished as before
    assert main(["attach", str(folder.path), "--plain"]) == 0


@pytest.mark.parametrize("columns", [30, 40, 50])
def test_a_narrow_listing_pads_no_line_and_breaks_no_figure(
        columns: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Below 70 columns the figures were padded with blanks to the terminal's width (`dbtui runs | cat`) and broken in
    the middle: `best step` on a line, `-, 7s ago` on the next."""
    runs = tmp_path / "runs"
    _run(runs / "stopped-one", "stopped", 1200, 4000, heartbeat=time.time() - 600, end="stopped")
    monkeypatch.setenv("COLUMNS", str(columns))
    assert main(["runs", str(runs)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("runs/stopped-one") and all(line == line.rstrip() for line in lines), lines
    note = lines.index(next(line for line in lines if line.startswith("stopped-one saved no")))
    figures = [figure for line in lines[1:note] for figure in line.strip().split(", ")]
    assert figures == ["stopped", "step 1200/4000", "last loss 0.1234", "best step -", "10m ago"], lines
    # It saved no checkpoint: said below its figures, between words.
    assert " ".join(lines[note:]) == "stopped-one saved no checkpoint: `dbtui resume` trains it from step 0", lines
    assert all(len(line) <= columns for line in lines[1:])


@pytest.mark.parametrize("end", ["stopped", "failed"])
def test_attach_says_a_stopped_run_resumed_and_killed_in_its_set_up_crashed(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], end: str) -> None:
    """`dbtui runs` said crashed, and `dbtui attach` replayed the earlier trainer's stop as the run's end (exit 0), or
    its failure, never saying that the resume's trainer was killed."""
    folder = _run(tmp_path / "runs" / "r", "", 8, 100, end=end)
    (folder.path / "profile.toml").write_text("", encoding="utf-8")
    folder.write_state(RunState(pid=os.getpid(), status="starting", step=8, total_steps=100, heartbeat=time.time() + 5,
                                started=time.time() + 5))  # a process that is no trainer: killed
    assert folder.status() == "crashed"
    assert main(["attach", str(folder.path), "--plain"]) == 1
    err = capsys.readouterr().err
    assert "gone without a last word (crashed)" in err and err.count("dbtui resume") == 1


def _killed_at_step_33_after_a_checkpoint_at_30(tmp_path: Path) -> RunFolder:
    """A run killed with kill -9: its log reached step 33, its state file step 17, its latest checkpoint is step 30."""
    from engine.events import StepEnded
    from tests.runs_helpers import run_with_checkpoints

    folder, _ = run_with_checkpoints(tmp_path, [10, 30])
    started = time.time() - 60
    steps = [StepEnded(step=step, total_steps=400, epoch=0, loss=0.1, smoothed_loss=0.1, lr=1e-6, it_per_s=1.0,
                       eta_s=None, time=started + step) for step in range(1, 34)]
    folder.events.write_text("".join(event.to_json() + "\n" for event in steps) + '{"event": "step_ended", "ti',
                             encoding="utf-8")  # the line being written when it was killed
    folder.write_state(RunState(pid=os.getpid(), status="running", step=17, total_steps=400, heartbeat=started + 17,
                                last_loss=0.1, started=started))  # a process that is no trainer: killed
    assert folder.status() == "crashed"
    return folder


def test_a_killed_run_is_listed_where_it_got_to_and_where_its_resume_goes_on_from(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """After a kill -9 `dbtui runs` showed the state file's step (17/400, rewritten once a second at most), while a
    checkpoint at step 30 was complete and the log had reached step 33: a user deciding whether to resume saw neither."""
    folder = _killed_at_step_33_after_a_checkpoint_at_30(tmp_path)
    monkeypatch.setenv("COLUMNS", "300")
    assert main(["runs", str(tmp_path / "runs")]) == 0
    assert "33/400 · resumes from 30" in capsys.readouterr().out
    # Killed in a later attempt's set-up: the log's last step is the earlier trainer's, and no checkpoint is left.
    for checkpoint in folder.checkpoints.iterdir():
        (checkpoint / "manifest.json").unlink()
    folder.write_state(RunState(pid=os.getpid(), status="starting", step=0, total_steps=400, started=time.time()))
    monkeypatch.setenv("COLUMNS", "40")
    assert main(["runs", str(tmp_path / "runs")]) == 0
    assert "step 0/400 · resumes from the start" in capsys.readouterr().out


def test_a_killed_run_is_listed_with_the_loss_of_the_step_it_got_to(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """After a kill -9 the step came from the log (33/400) and the last loss from the state file, of step 17: the row
    paired step 33 with another step's loss."""
    folder = _killed_at_step_33_after_a_checkpoint_at_30(tmp_path)
    lines = folder.events.read_text(encoding="utf-8").splitlines(keepends=True)
    folder.events.write_text("".join(lines[:-2]) + lines[-2].replace('"loss": 0.1,', '"loss": 0.0333,') + lines[-1],
                             encoding="utf-8")
    monkeypatch.setenv("COLUMNS", "300")
    assert main(["runs", str(tmp_path / "runs")]) == 0
    [row] = [line for line in capsys.readouterr().out.splitlines() if "resumes from" in line]
    assert [cell.strip() for cell in row.split("│")[2:5]] == ["crashed", "33/400 · resumes from 30", "0.0333"], row


def test_a_stopped_run_whose_stop_save_was_cut_short_says_where_its_resume_goes_on_from(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A second Ctrl-C cut the stop's save of step 33 short: the trainer said to resume from step 30, and `dbtui runs`
    said 'stopped 33/400' alone, as if the stop had kept step 33. A stop that kept its step is shown as before."""
    from engine.runs.crash_point import resume_point

    folder = _killed_at_step_33_after_a_checkpoint_at_30(tmp_path)
    stopped = RunState(pid=os.getpid(), status="stopped", step=33, total_steps=400, last_loss=0.1, started=time.time() - 60)
    folder.write_state(stopped)
    assert folder.status() == "stopped"
    monkeypatch.setenv("COLUMNS", "300")
    assert main(["runs", str(tmp_path / "runs")]) == 0
    [row] = [line for line in capsys.readouterr().out.splitlines() if "stopped" in line]
    assert [cell.strip() for cell in row.split("│")[2:4]] == ["stopped", "33/400 · resumes from 30"], row
    kept_its_step = folder.events.read_text(encoding="utf-8").splitlines(keepends=True)[:30]  # stopped at 30, saved
    folder.events.write_text("".join(kept_its_step), encoding="utf-8")
    assert resume_point(folder, RunState(**{**stopped.__dict__, "step": 30}), "stopped") is None


def test_a_killed_run_at_80_columns_keeps_its_path_whole_to_resume_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Its step cell ('33/400 · resumes from 30') left the run column five letters at 80 columns: the path to give
    `dbtui resume` was folded over a dozen lines, and the age over two. It is listed as in a narrow terminal now."""
    folder = _killed_at_step_33_after_a_checkpoint_at_30(tmp_path)
    monkeypatch.setenv("COLUMNS", "80")
    _a_terminal(monkeypatch)
    assert main(["runs", str(tmp_path / "runs")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == str(folder.path), lines
    assert "crashed, step 33/400 · resumes from 30" in lines[1] and "ago" in lines[-1], lines


async def test_the_wizards_run_list_shows_a_killed_run_where_it_got_to_and_where_its_resume_goes_on_from(
        tmp_path: Path) -> None:
    """The wizard's Attach list showed the killed run at the state file's step (17/400) where `dbtui runs` said
    '33/400 · resumes from 30'."""
    from textual.widgets import OptionList

    from dbtui.app import make_app
    from dbtui.engine_facade import RealEngine
    from dbtui.screens.attach import AttachScreen
    from dbtui.session import Session
    from wizard_steps import settle

    folder = _killed_at_step_33_after_a_checkpoint_at_30(tmp_path)
    engine = RealEngine()
    app = make_app(engine, Session.for_demo(), image_renderer="none")
    async with app.run_test(size=(100, 24)) as pilot:
        screen = AttachScreen(engine, str(folder.path.parent))
        app.push_screen(screen)
        await settle(pilot)
        row = str(screen.query_one(OptionList).get_option_at_index(0).prompt)
    assert "crashed" in row and "33/400 · resumes from 30" in row, row


class _SlowRunList:
    """The fake engine's list of runs (one, "big"), given once the test sets `read`; `threads`, those that read it."""

    def __init__(self) -> None:
        self.read = threading.Event()
        self.threads: list[threading.Thread] = []

    def __call__(self, output_dir: str, on_skip=None) -> list[RunSummary]:
        self.threads.append(threading.current_thread())
        self.read.wait(10)  # a long log being read
        return [RunSummary(Path(output_dir) / "big", "stopped", 5, 10, best_step=4)]


@asynccontextmanager
async def _attach_list_being_read(folder: Path) -> AsyncIterator[tuple[Pilot, AttachScreen, _SlowRunList]]:
    """The wizard's Attach list of `folder`, its runs still being read."""
    from dbtui.app import make_app
    from dbtui.screens.attach import AttachScreen
    from dbtui.session import Session
    from wizard_fakes import FakeEngine

    engine, listing = FakeEngine(), _SlowRunList()
    engine.list_runs = listing
    app = make_app(engine, Session.for_demo(), image_renderer="none")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = AttachScreen(engine, str(folder))
        app.push_screen(screen)
        await pilot.pause()
        yield pilot, screen, listing


async def test_the_wizards_run_list_reads_the_runs_off_the_main_thread(tmp_path: Path) -> None:
    """The Attach list read every run's summary on the main thread: with a 1 GB events log the wizard froze ~7 s on it,
    drawing nothing and taking no key. It now says it is reading, stays responsive, then lists the runs."""
    from textual.widgets import Input, OptionList, Static

    from wizard_steps import settle

    async with _attach_list_being_read(tmp_path / "runs") as (pilot, screen, listing):
        options = screen.query_one(OptionList)
        assert options.loading and "Reading the runs" in str(screen.query_one("#attach-note", Static).render())
        screen.query_one("#attach-dir", Input).focus()
        await pilot.press("x")  # the screen still takes keys while the runs are read
        assert screen.query_one("#attach-dir", Input).value.endswith("x")
        listing.read.set()
        await settle(pilot)
        assert listing.threads and listing.threads[0] is not threading.main_thread()
        assert not options.loading and options.option_count == 1
        row = str(options.get_option_at_index(0).prompt)
        assert "big" in row and "5/10" in row and "best 4" in row, row
        assert "1 run(s)" in str(screen.query_one("#attach-note", Static).render())
        assert pilot.app.focused is screen.query_one("#attach-dir", Input)  # the folder being typed keeps the keys


async def test_the_wizards_run_list_asked_twice_for_a_folder_lists_its_runs_once(tmp_path: Path) -> None:
    """Enter pressed again on the folder while its runs were read (nothing seemed to happen): both readings came
    back, the second added the same runs again, and the OptionList's duplicate ids crashed the wizard."""
    from textual.widgets import Input, OptionList, Static

    from wizard_steps import settle

    async with _attach_list_being_read(tmp_path / "runs") as (pilot, screen, listing):
        screen.query_one("#attach-dir", Input).focus()
        await pilot.press("enter")  # the same folder asked again while the first reading is under way
        await pilot.pause()
        listing.read.set()
        await settle(pilot)
        options = screen.query_one(OptionList)
        assert pilot.app.is_running and pilot.app.screen is screen
        assert not options.loading and options.option_count == 1
        assert "1 run(s)" in str(screen.query_one("#attach-note", Static).render())


def _failed_at_step_3_before_its_first_checkpoint(tmp_path: Path) -> RunFolder:
    """A run whose loss became NaN (or that ran out of memory) at step 3, before its first checkpoint."""
    from engine.events import RunFailed, StepEnded

    folder = _run(tmp_path / "runs" / "nan-run", "failed", 3, 40, heartbeat=time.time())
    steps = [StepEnded(step=step, total_steps=40, epoch=0, loss=0.1, smoothed_loss=0.1, lr=1.0, it_per_s=1.0, eta_s=None)
             for step in (1, 2, 3)]
    with folder.events.open("a", encoding="utf-8") as file:
        file.write("".join(event.to_json() + "\n" for event in [*steps, RunFailed(reason="the loss became nan", step=3)]))
    return folder


def test_a_failed_run_without_a_checkpoint_is_said_to_resume_from_step_0(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """It was listed 'failed 3/40' alone, while `dbtui resume` of it trains from step 0. It is said under the table,
    which keeps to 80 columns; a run whose checkpoints are gone (its resume refused) is not said to start over."""
    from engine.events import CheckpointSaved

    folder = _failed_at_step_3_before_its_first_checkpoint(tmp_path)
    monkeypatch.setenv("COLUMNS", "80")
    _a_terminal(monkeypatch)
    assert main(["runs", str(tmp_path / "runs")]) == 0
    lines = capsys.readouterr().out.splitlines()
    [row] = [line for line in lines if "│ failed " in line]
    assert [cell.strip() for cell in row.split("│")[2:4]] == ["failed", "3/40"], lines
    assert lines[-1] == "nan-run saved no checkpoint: `dbtui resume` trains it from step 0", lines
    assert max(len(line) for line in lines) <= 80
    with folder.events.open("a", encoding="utf-8") as file:  # its checkpoints deleted by hand since
        file.write(CheckpointSaved(step=2, path=str(folder.checkpoints / "step-00000002"), seconds=1.0).to_json() + "\n")
    assert main(["runs", str(tmp_path / "runs")]) == 0
    assert "saved no checkpoint" not in capsys.readouterr().out


async def test_the_wizards_run_list_says_a_failed_run_without_a_checkpoint_resumes_from_the_start(
        tmp_path: Path) -> None:
    """The Attach list showed it at 'failed 3/40' alone, as `dbtui runs` did."""
    from textual.widgets import OptionList

    from dbtui.app import make_app
    from dbtui.engine_facade import RealEngine
    from dbtui.screens.attach import AttachScreen
    from dbtui.session import Session
    from wizard_steps import settle

    folder = _failed_at_step_3_before_its_first_checkpoint(tmp_path)
    engine = RealEngine()
    app = make_app(engine, Session.for_demo(), image_renderer="none")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = AttachScreen(engine, str(folder.path.parent))
        app.push_screen(screen)
        await settle(pilot)
        row = str(screen.query_one(OptionList).get_option_at_index(0).prompt)
    assert "failed" in row and "3/40 · resumes from the start" in row, row


def test_a_run_folder_deleted_while_the_runs_are_listed_is_left_out(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """`rm -rf runs/old` while `dbtui runs` read the folders: the deleted run was listed "unknown", "20794d ago" (its
    age counted from 1970), and the wizard's run list showed it too."""
    import shutil

    from dbtui.engine_facade import RealEngine
    from engine.runs import folder as folder_module

    _run(tmp_path / "runs" / "kept", "stopped", 5, 10, heartbeat=time.time() - 60, end="stopped")
    _run(tmp_path / "runs" / "old", "stopped", 5, 10, heartbeat=time.time() - 120, end="stopped")

    def listed_then_deleted(output_dir: Path, on_skip=None) -> list[RunFolder]:
        runs = list_runs(output_dir, on_skip)
        shutil.rmtree(tmp_path / "runs" / "old", ignore_errors=True)  # as `rm -rf` in another shell, meanwhile
        return runs

    monkeypatch.setattr(folder_module, "list_runs", listed_then_deleted)
    monkeypatch.setenv("COLUMNS", "300")
    assert main(["runs", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    assert "runs/kept " in out and "runs/old" not in out and "unknown" not in out, out
    _run(tmp_path / "runs" / "old", "stopped", 5, 10, heartbeat=time.time() - 120, end="stopped")
    assert [run.path.name for run in RealEngine().list_runs(str(tmp_path / "runs"))] == ["kept"]
