"""A run resumed from the dashboard moments after it stopped: what it said before is history, not news; its footer's
controls come back."""

from __future__ import annotations

import os
import time
from pathlib import Path

from dbtui.app import make_app
from dbtui.session import Session
from engine.events import CheckpointSaved, RunFinished, RunStarted, StepEnded
from test_dashboard_footer import CONTROLS, footer_settled
from wizard_fakes import FakeEngine
from wizard_steps import resume_from_the_dashboard, settle

SIZE = (80, 24)


def _stopped_3_s_ago() -> list:
    """The earlier attempt's end: its checkpoint of step 4 and its stop there, 3 s ago."""
    stopped = time.time() - 3
    return [CheckpointSaved(time=stopped, step=4, path="runs/tiny-demo/checkpoints/step-00000004"),
            RunFinished(time=stopped, step=4, outputs={}, seconds=3.0, status="stopped")]


async def test_a_run_resumed_seconds_after_it_stopped_does_not_pop_its_stop_again(tmp_path: Path, monkeypatch) -> None:
    """Stopped, then resumed from the dashboard (Esc, Ctrl+N, r) within 10 s: the resumed run's dashboard replayed
    the stop and its checkpoint as news, "Run stopped at step 4: Esc then Ctrl+N resumes it", over the run resuming.
    Only what the trainer writes after the wizard starts it is news."""
    monkeypatch.chdir(tmp_path)
    engine = FakeEngine(has_checkpoints=True)
    engine.events = [*_stopped_3_s_ago(),
                     RunStarted(time=time.time() + 60, run_dir="runs/tiny-demo", profile={}, hardware={}, versions={},
                                total_steps=6, resumed_from_step=4)]
    app = make_app(engine, Session.for_demo("runs"), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        app.goto(4)
        await settle(pilot, 0.3)
        assert type(app.screen).__name__ == "ResumeScreen"
        await pilot.press("r")
        await settle(pilot, 0.3)
        said = [(n.title, n.message) for n in app._notifications]
        assert not app.screen.finished
        footer = await footer_settled(pilot)
    assert not [title for title, message in said if "stopped" in title or message.startswith("Checkpoint saved")], said
    # The replayed stop ended the run on the screen and its resume started it again: the footer has its controls.
    assert all(label in footer for label in CONTROLS), footer


async def test_a_crashed_run_resumed_from_the_dashboard_drops_its_crash_and_its_old_speed_and_gets_its_controls_back(
        tmp_path: Path, monkeypatch) -> None:
    """Resumed from the dashboard (Esc, Ctrl+N, r), a crashed run kept "Run crashed … Esc then Ctrl+N resumes it" up
    for 15 s over the restarted run, and the stats its crashed attempt's speed and ETA, replayed, as if it trained."""
    app, _, status = _at_a_crashed_run(tmp_path, monkeypatch, events=_a_step_30_s_ago())
    Path("runs/tiny-demo/profile.toml").write_text("# written by the launch\n", encoding="utf-8")
    async with app.run_test(size=SIZE) as pilot:
        app.goto(4)
        await settle(pilot, 0.3)
        assert [n.title for n in app._notifications] == ["Run crashed"]
        assert app.screen.finished
        ended = await footer_settled(pilot)
        await resume_from_the_dashboard(app, pilot)
        assert status["now"] == "running" and type(app.screen).__name__ == "TrainingScreen"
        said = [n.title for n in app._notifications]
        stats = "\n".join(strip.text for strip in app.screen._compositor.render_strips())
        assert not app.screen.finished
        resumed = await footer_settled(pilot)
    assert "Run crashed" not in said
    assert "2.50 it/s" not in stats and "12m" not in stats, stats
    # Its controls, off the ended run's footer, come back with the resume.
    assert not [label for label in CONTROLS if label in ended], ended
    assert all(label in resumed for label in CONTROLS), resumed


async def test_a_run_started_takes_down_the_last_runs_notices_only(tmp_path: Path, monkeypatch) -> None:
    """Starting a run cleared every notice showing: a caption that could not be saved, not yet read, went with the
    ended run's "Run crashed … resumes it". Only what the dashboard said of a run goes."""
    said = await _started_over_a_crash_and_a_caption_notice(tmp_path, monkeypatch)
    assert "Run crashed" not in said and "Caption not saved" in said, said


async def test_a_textual_without_its_private_notice_names_starts_the_run_all_the_same(tmp_path: Path, monkeypatch) -> None:
    """Taking down one notice uses Textual's private names (pyproject asks textual>=8.0, no upper bound): a release
    that moves them raised AttributeError as the run started, taking the wizard down. Every notice goes then, as
    before."""
    from textual.app import App

    monkeypatch.delattr(App, "_unnotify")
    assert "Run crashed" not in await _started_over_a_crash_and_a_caption_notice(tmp_path, monkeypatch)


async def _started_over_a_crash_and_a_caption_notice(tmp_path: Path, monkeypatch) -> list[str]:
    """The titles of the notices showing once a crashed run is resumed from the dashboard, a caption's notice up."""
    app, _, _ = _at_a_crashed_run(tmp_path, monkeypatch, events=_a_step_30_s_ago())
    async with app.run_test(size=SIZE) as pilot:
        app.goto(4)
        await settle(pilot, 0.3)
        app.notify("cannot write captions in images: disk full", title="Caption not saved", severity="error", timeout=60)
        await settle(pilot)
        assert [n.title for n in app._notifications] == ["Run crashed", "Caption not saved"]
        await resume_from_the_dashboard(app, pilot)
        return [n.title for n in app._notifications]


async def test_a_run_started_takes_down_what_the_ended_runs_buttons_said(tmp_path: Path, monkeypatch) -> None:
    """The ended run's buttons (e, r) said their outcome beside the dashboard's notices, so a run started next kept
    "Report written" of the run before, and "No best step to export", up over the new run."""
    app, engine, _ = _at_a_crashed_run(tmp_path, monkeypatch)
    monkeypatch.setattr(engine, "write_report", lambda run: Path(run) / "report.html", raising=False)
    async with app.run_test(size=SIZE) as pilot:
        app.goto(4)
        await settle(pilot, 0.3)
        app.notify("cannot write captions in images: disk full", title="Caption not saved", severity="error")
        for key in ("r", "e"):
            await pilot.press(key)
            await settle(pilot, 0.3)
        said = [n.title or n.message for n in app._notifications]
        assert "Report written" in said and any(s.startswith("No best step") for s in said), said
        await resume_from_the_dashboard(app, pilot)
        said = [n.title or n.message for n in app._notifications]
    assert said == ["Caption not saved"], said


def _a_step_30_s_ago() -> list:
    return [StepEnded(time=time.time() - 30, step=4, total_steps=6, epoch=0, loss=0.1, smoothed_loss=0.1, lr=1e-4,
                      it_per_s=2.5, eta_s=754.0)]


def _at_a_crashed_run(tmp_path: Path, monkeypatch, events: list | None = None) -> tuple:
    """The wizard, its engine and the run's status: a crashed run at step 4 of 6 in runs/tiny-demo, which a start of
    the engine's sets running."""
    from dbtui.engine_facade import RunSummary

    monkeypatch.chdir(tmp_path)
    folder = Path("runs") / "tiny-demo"
    folder.mkdir(parents=True)
    engine = FakeEngine(has_checkpoints=True, events=events or [])
    status = {"now": "crashed"}
    monkeypatch.setattr(engine, "list_runs", lambda output_dir, on_skip=None: [
        RunSummary(folder.absolute(), status["now"], 4, 6)])
    start_run = engine.start_run
    monkeypatch.setattr(engine, "start_run", lambda profile, resume=None, waiting=None: (
        status.update(now="running"), start_run(profile, resume))[1])
    session = Session.for_demo("runs")
    session.run_folder = folder
    return make_app(engine, session, image_renderer="none"), engine, status


async def test_a_resumed_run_setting_up_is_not_shown_as_its_earlier_stop(tmp_path: Path, monkeypatch) -> None:
    """Resumed from the dashboard, a stopped run showed its earlier attempt's end until the trainer started again had
    loaded the model (10 s for the tiny SDXL on a CPU, minutes for a real one): status "stopped", no Stop & save, and
    "Run stopped … Esc then Ctrl+N resumes it" as the last line, over the run resuming; s did nothing."""
    monkeypatch.chdir(tmp_path)
    engine = FakeEngine(has_checkpoints=True)  # the resumed trainer has written nothing yet
    engine.events = [*_a_step_30_s_ago(), *_stopped_3_s_ago()]
    app = make_app(engine, Session.for_demo("runs"), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        app.goto(4)
        await settle(pilot, 0.3)
        await pilot.press("r")  # the resume dialog's
        await settle(pilot, 0.3)
        screen = app.screen
        assert not screen.finished and screen.query_one("#tr-stats").status == "resuming"
        assert "resum" in str(screen.query_one("#tr-phase").render())
        footer = await footer_settled(pilot)
        await pilot.press("s")
        await settle(pilot)
        log = [str(line) for line in screen.query_one("#tr-log").lines]
    assert all(label in footer for label in CONTROLS), footer
    assert ("control", "stop") in engine.calls
    # The earlier attempt's steps are not the new trainer's: stopped in its set-up, it saves nothing.
    assert any(line.startswith("Stopping before the first step") for line in log), log
    # How the earlier attempt ended stays in the log, said as history.
    assert "Earlier attempt: stopped at step 4" in log, log


async def test_a_resumed_run_whose_trainer_dies_setting_up_is_shown_crashed(tmp_path: Path, monkeypatch) -> None:
    """Resumed from the dashboard, a stopped run whose trainer was killed loading the model (the OOM killer), before
    its first event, said "resuming: the trainer is setting up" for good, its controls up: the follower took the
    earlier attempt's end for the trainer's last word, and never asked whether it was gone."""
    monkeypatch.chdir(tmp_path)
    engine = FakeEngine(has_checkpoints=True)  # its follower ends, as the real one does once the trainer is gone
    engine.events = _stopped_3_s_ago()
    monkeypatch.setattr(engine, "run_status", lambda folder: "crashed")
    app = make_app(engine, Session.for_demo("runs"), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        app.goto(4)
        await settle(pilot, 0.3)
        await pilot.press("r")  # the resume dialog's
        await settle(pilot, 0.3)
        screen = app.screen
        assert screen.finished and screen.query_one("#tr-stats").status == "crashed"
        footer = await footer_settled(pilot)
    assert not [label for label in CONTROLS if label in footer], footer


def _attached_to(tmp_path: Path, monkeypatch, events: list, trainer_started: float) -> tuple:
    """The wizard attached (Train finding the run live, or its attach list) to runs/tiny-demo, whose ``events`` the
    follower replays and whose latest trainer was started at ``trainer_started``; and its engine."""
    monkeypatch.chdir(tmp_path)
    folder = Path("runs") / "tiny-demo"
    folder.mkdir(parents=True)
    engine = FakeEngine(events=events, started=trainer_started)
    session = Session.for_demo("runs")
    session.run_folder = folder
    return make_app(engine, session, image_renderer="none"), engine


async def _log_after_stop(app, pilot) -> list[str]:
    await pilot.press("s")
    await settle(pilot)
    return [str(line) for line in app.screen.query_one("#tr-log").lines]


async def test_attaching_to_a_run_resumed_from_another_terminal_shows_it_resuming(tmp_path: Path, monkeypatch) -> None:
    """`dbtui resume RUN` in another terminal loads the model; the wizard attached to the run showed its earlier
    attempt's end ("finished: stopped", "Run stopped … resumes it"), and s left no stop for the trainer starting."""
    from dbtui.engine_facade import RealEngine
    from engine.runs.folder import RunFolder, RunState

    app, engine = _attached_to(tmp_path, monkeypatch, [*_a_step_30_s_ago(), *_stopped_3_s_ago()], 0.0)
    # The real engine's answer, from the state file the resumed trainer's launcher wrote.
    monkeypatch.setattr(engine, "trainer_started", RealEngine().trainer_started)
    RunFolder(Path("runs/tiny-demo")).write_state(RunState(pid=os.getpid(), status="starting", step=4,
                                                           started=time.time()))
    async with app.run_test(size=SIZE) as pilot:
        app.goto(4)
        await settle(pilot, 0.3)
        screen = app.screen
        assert not screen.finished and screen.query_one("#tr-stats").status == "resuming"
        assert not [n.title for n in app._notifications if "stopped" in (n.title or "")]
        log = await _log_after_stop(app, pilot)
    assert ("control", "stop") in engine.calls
    assert "Earlier attempt: stopped at step 4" in log and not [line for line in log if line.startswith("Run stopped")]
    assert any(line.startswith("Stopping before the first step") for line in log), log


async def test_attaching_as_a_trainer_ends_shows_its_end(tmp_path: Path, monkeypatch) -> None:
    """Attached between a trainer's run_finished and its state's "stopped": the state still names that trainer, whose
    end is the run's, not an earlier attempt's (the screen must not wait for a resume that is not coming)."""
    started = time.time() - 60
    app, _ = _attached_to(tmp_path, monkeypatch, [
        StepEnded(time=started + 30, step=4, total_steps=6, epoch=0, loss=0.1, smoothed_loss=0.1, lr=1e-4,
                  it_per_s=2.5, eta_s=1.0),
        RunFinished(time=time.time() - 0.01, step=4, outputs={}, seconds=3.0, status="stopped")], started)
    async with app.run_test(size=SIZE) as pilot:
        app.goto(4)
        await settle(pilot, 0.3)
        assert app.screen.finished and app.screen.query_one("#tr-stats").status == "stopped"


async def test_attaching_to_a_run_training_counts_its_replayed_steps(tmp_path: Path, monkeypatch) -> None:
    """The steps replayed of a trainer at work are its own: a stop saves a checkpoint first, and says so."""
    started = time.time() - 60
    app, engine = _attached_to(tmp_path, monkeypatch, [
        RunStarted(time=started + 20, run_dir="runs/tiny-demo", profile={}, hardware={}, versions={}, total_steps=6),
        StepEnded(time=started + 30, step=4, total_steps=6, epoch=0, loss=0.1, smoothed_loss=0.1, lr=1e-4,
                  it_per_s=2.5, eta_s=1.0)], started)
    async with app.run_test(size=SIZE) as pilot:
        app.goto(4)
        await settle(pilot, 0.3)
        log = await _log_after_stop(app, pilot)
    assert ("control", "stop") in engine.calls and "Stopping after a checkpoint…" in log, log


async def test_a_resume_answered_after_another_terminal_resumed_counts_that_trainer_s_steps(tmp_path: Path,
                                                                                           monkeypatch) -> None:
    """The resume dialog answered (r) once `dbtui resume RUN` in another terminal had its trainer at work: the wizard
    followed that trainer, but took its steps, written before the answer, for an earlier attempt's: status "resuming"
    and s said "Stopping before the first step" (nothing saved), where that trainer saves a checkpoint first."""
    from engine.runs.start_refusals import RunLiveError

    monkeypatch.chdir(tmp_path)
    now, started = time.time(), time.time() - 60
    engine = FakeEngine(has_checkpoints=True, started=started, events=[
        StepEnded(time=now - 90, step=4, total_steps=6, epoch=0, loss=0.1, smoothed_loss=0.1, lr=1e-4, it_per_s=2.5,
                  eta_s=1.0),
        RunFinished(time=now - 80, step=4, outputs={}, seconds=3.0, status="stopped"),
        RunStarted(time=started + 10, run_dir="runs/tiny-demo", profile={}, hardware={}, versions={}, total_steps=6,
                   resumed_from_step=4),
        StepEnded(time=started + 30, step=5, total_steps=6, epoch=0, loss=0.1, smoothed_loss=0.1, lr=1e-4,
                  it_per_s=2.5, eta_s=1.0)])
    start_run = engine.start_run

    def resumed_elsewhere(profile, resume=None, waiting=None) -> Path:
        if resume is None:
            return start_run(profile)  # the dialog: the run has checkpoints
        raise RunLiveError(Path("runs") / "tiny-demo")

    monkeypatch.setattr(engine, "start_run", resumed_elsewhere)
    app = make_app(engine, Session.for_demo("runs"), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        app.goto(4)
        await settle(pilot, 0.3)
        await pilot.press("r")  # the resume dialog's
        await settle(pilot, 0.3)
        assert app.screen.query_one("#tr-stats").status == "training"
        log = await _log_after_stop(app, pilot)
    assert ("control", "stop") in engine.calls and "Stopping after a checkpoint…" in log, log
