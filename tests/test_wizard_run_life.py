"""The Training step over a run's life: attached from elsewhere, starting, stopped, crashed, already live, left."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator
from pathlib import Path

from textual.app import App
from textual.widgets import Input, OptionList

from dbtui.app import make_app
from dbtui.session import Session
from engine.profile import dumps_profile
from engine.runs.folder import RunFolder, run_dir_for
from wizard_fakes import FakeEngine
from wizard_steps import SETTLE_S, resume_from_the_dashboard, settle, until

SIZE = (80, 24)


async def test_train_after_attaching_from_another_folder_resumes_that_run(tmp_path: Path, monkeypatch) -> None:
    """The run's profile keeps output_dir = "runs": Train read it from the current folder and started a new run there."""
    run = tmp_path / "work" / "runs" / "tiny-demo"
    run.mkdir(parents=True)
    (run / "profile.toml").write_text(dumps_profile(Session.for_demo("runs").profile()), encoding="utf-8")
    (tmp_path / "home").mkdir()
    monkeypatch.chdir(tmp_path / "home")
    engine = FakeEngine(has_checkpoints=True)
    started: list[tuple[Path, str | None]] = []
    fake_start = engine.start_run
    monkeypatch.setattr(engine, "start_run", lambda profile, resume=None, waiting=None: (
        started.append((run_dir_for(profile), resume)), fake_start(profile, resume))[1])
    app = make_app(engine, Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await _attach_first_run(app, pilot, run.parent)  # tiny-demo
        assert type(app.screen).__name__ == "TrainingScreen"
        await resume_from_the_dashboard(app, pilot)
    assert started == [(run, None), (run, "latest")]


async def _attach_first_run(app, pilot, runs: Path) -> None:
    """From the start screen: Attach, the runs folder ``runs``, and the first run it lists."""
    await pilot.press("a")
    await pilot.pause()
    app.screen.query_one(Input).value = str(runs)
    app.screen.query_one(Input).focus()
    await pilot.press("enter")
    app.screen.query_one(OptionList).focus()
    await pilot.press("enter")
    await settle(pilot, 0.3)


def _slow_start(engine: FakeEngine, monkeypatch, seconds: float) -> threading.Event:
    """Its start_run takes a while, as the real one does (it checks the inputs and writes the run folder): until the
    event returned is set, or ``seconds`` at most. A test sets it once its keys are pressed: a fixed wait let a loaded
    machine finish the start before them."""
    fake_start = engine.start_run
    release = threading.Event()

    def start(profile, resume=None, waiting=None):
        release.wait(seconds)
        return fake_start(profile, resume)

    monkeypatch.setattr(engine, "start_run", start)
    return release


def _app_starting_a_run(tmp_path: Path, engine: FakeEngine, monkeypatch, seconds: float = 30.0):
    """The app on a live demo draft in ``tmp_path`` whose ``engine`` starts a run once released (``seconds`` at most);
    that draft, and the release."""
    release = _slow_start(engine, monkeypatch, seconds)
    session = _live_demo(tmp_path)
    return make_app(engine, session, image_renderer="none"), session, release


def _exits(app, monkeypatch) -> list:
    said: list = []
    real_exit = app.exit
    monkeypatch.setattr(app, "exit", lambda *args, **kwargs: (said.append(kwargs.get("message")), real_exit(*args, **kwargs)))
    return said


def _live_demo(tmp_path: Path) -> Session:
    """A demo draft whose run the fake engine lists as running (person-v2)."""
    session = Session.for_demo(str(tmp_path / "runs"))
    session.set("name", "person-v2")
    return session


async def test_quitting_while_the_run_starts_quits_at_once_and_the_start_goes_on(tmp_path: Path, monkeypatch) -> None:
    """Ctrl+Q just after Train waited for the start (10 s at most, the process then waited for the rest in silence, and
    printed an asyncio traceback): it quits at once saying that the process ends the start, which is neither stopped
    nor asked to stop."""
    from dbtui.screens.training import TrainingScreen

    monkeypatch.chdir(tmp_path)
    engine = FakeEngine()
    app, session, release = _app_starting_a_run(tmp_path, engine, monkeypatch)
    said = _exits(app, monkeypatch)
    held_start, started = engine.start_run, threading.Event()

    def start(*args, **kwargs) -> Path:
        folder = held_start(*args, **kwargs)
        started.set()
        return folder

    monkeypatch.setattr(engine, "start_run", start)
    async with app.run_test(size=SIZE) as pilot:
        app.push_screen(TrainingScreen(session, engine))
        await pilot.pause()
        await pilot.press("ctrl+q")
        await until(pilot, lambda: bool(said))  # the start is still held: the quit does not wait for it
        assert not release.is_set() and ("start_run", "person-v2") not in engine.calls
    release.set()
    folder = tmp_path / "runs" / "person-v2"
    assert said == [f"Quit while the run was still starting: dbtui finishes starting it before the shell comes back "
                    f"(seconds, for its image checks; at most 10 min more behind another launch into its folder). Then "
                    f"`dbtui runs {folder.parent}` says whether it trains in {folder}, `dbtui attach {folder}` follows "
                    f"it and `dbtui stop {folder}` stops it."]
    assert started.wait(SETTLE_S) and ("start_run", "person-v2") in engine.calls  # it went on after the app quit
    assert not [call for call in engine.calls if call[0] == "control"]


async def test_stop_pressed_while_the_run_starts_stops_it_once_started(tmp_path: Path, monkeypatch) -> None:
    """It said "No run is going." and the run then trained."""
    from dbtui.screens.training import TrainingScreen

    monkeypatch.chdir(tmp_path)
    engine = FakeEngine(events=[])
    app, session, release = _app_starting_a_run(tmp_path, engine, monkeypatch)
    async with app.run_test(size=SIZE) as pilot:
        app.push_screen(TrainingScreen(session, engine))
        await pilot.pause()
        await pilot.press("s")
        await pilot.pause()
        assert not any(n.message == "No run is going." for n in app._notifications)
        release.set()
        await settle(pilot, 0.2)
        assert [c for c in engine.calls if c[0] == "control"] == [("control", "stop")]


async def test_a_crashed_run_without_a_checkpoint_is_not_said_to_resume_from_one(tmp_path: Path, monkeypatch) -> None:
    """The notice said "continues from the latest checkpoint" of a run that had saved none."""
    from dbtui.engine_facade import RunSummary
    from dbtui.screens.training import TrainingScreen

    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "runs" / "x"
    folder.mkdir(parents=True)
    (folder / "profile.toml").write_text("# written by the launch\n", encoding="utf-8")  # what a resume trains
    engine = FakeEngine(events=[])  # the events end without a last word
    monkeypatch.setattr(engine, "list_runs", lambda output_dir, on_skip=None: [RunSummary(folder, "crashed", 0, 0)])
    session = Session()
    session.run_folder = folder
    app = make_app(engine, session, image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        app.push_screen(TrainingScreen(session, engine))
        await settle(pilot, 0.3)
        [notice] = [n.message for n in app._notifications if n.title == "Run crashed"]
    assert "latest checkpoint" not in notice
    assert notice.endswith(f"No checkpoint was saved yet; `dbtui resume {folder}` trains it from the start.")


async def test_a_crashed_run_says_it_resumes_in_the_wizard_as_a_stopped_one_does(tmp_path: Path, monkeypatch) -> None:
    """A crashed run was told only `dbtui resume …`, though Esc then Ctrl+N resumes it in the wizard as it does a
    stopped one; and its trainer.log was named relative to the working folder, unlike the rest of the dashboard."""
    from textual.widgets import Log

    from dbtui.engine_facade import RunSummary
    from dbtui.screens.training import TrainingScreen

    monkeypatch.chdir(tmp_path)
    folder = Path("runs") / "tiny-demo"  # as the run list names it: relative to where dbtui runs
    folder.mkdir(parents=True)
    (folder / "profile.toml").write_text("# written by the launch\n", encoding="utf-8")
    engine = FakeEngine(events=[])  # the events end without a last word
    monkeypatch.setattr(engine, "list_runs", lambda output_dir, on_skip=None: [RunSummary(folder.absolute(), "crashed", 0, 0)])
    session = Session.for_demo("runs")  # its draft's Train resumes this very run
    session.run_folder = folder
    app = make_app(engine, session, image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        app.push_screen(TrainingScreen(session, engine))
        await settle(pilot, 0.3)
        log = "".join("".join(app.screen.query_one(Log).lines).split())
        [notice] = [n.message for n in app._notifications if n.title.startswith("Run ")]
    assert "Esc then Ctrl+N resumes it in the wizard." in notice
    assert "".join(str(tmp_path / "runs" / "tiny-demo" / "logs" / "trainer.log").split()) in log


async def test_detaching_from_a_crashed_run_says_how_to_resume_it(tmp_path: Path, monkeypatch) -> None:
    """d said only "… crashed (not finished); its log is …", where a stopped run's words say how to resume it."""
    from dbtui.engine_facade import RunSummary
    from dbtui.screens.training import TrainingScreen

    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "runs" / "x"
    folder.mkdir(parents=True)
    (folder / "profile.toml").write_text("# written by the launch\n", encoding="utf-8")
    engine = FakeEngine(events=[])  # the events end without a last word
    monkeypatch.setattr(engine, "list_runs", lambda output_dir, on_skip=None: [RunSummary(folder, "crashed", 0, 0)])
    session = Session()
    session.run_folder = folder
    app = make_app(engine, session, image_renderer="none")
    said = _exits(app, monkeypatch)
    async with app.run_test(size=SIZE) as pilot:
        app.push_screen(TrainingScreen(session, engine))
        await settle(pilot, 0.3)
        await pilot.press("d")
        await pilot.pause()
    assert said == [f"The run in {folder} crashed (not finished); its log is {folder}/logs/trainer.log. "
                    f"No checkpoint was saved yet; `dbtui resume {folder}` trains it from the start."]


async def test_a_stopped_run_says_how_to_resume_it_in_the_log_a_notification_and_on_detach(tmp_path: Path, monkeypatch) -> None:
    import time

    from engine.events import RunFinished
    from textual.widgets import Log
    from wizard_fakes import run_events

    monkeypatch.chdir(tmp_path)
    steps = [e for e in run_events() if e.kind != "run_finished" and getattr(e, "step", 0) <= 3]
    engine = FakeEngine(events=[*steps, RunFinished(time=time.time() + 60, step=3, outputs={}, seconds=3.0, status="stopped")])
    session = Session.for_demo()
    (tmp_path / "runs" / "tiny-demo").mkdir(parents=True)
    (tmp_path / "runs" / "tiny-demo" / "profile.toml").write_text("# written by the launch\n", encoding="utf-8")
    app = make_app(engine, session, image_renderer="none")
    said = _exits(app, monkeypatch)
    hint = f"No checkpoint was saved yet; `dbtui resume {tmp_path / 'runs/tiny-demo'}` trains it from the start."
    async with app.run_test(size=SIZE) as pilot:
        app.goto(4)
        await settle(pilot, 0.3)
        log = "".join("".join(app.screen.query_one(Log).lines).split())  # wrapped within the path too
        assert "".join(f"Run stopped: no final export (a stopped run writes none). Esc then Ctrl+N resumes it in the wizard. {hint}".split()) in log
        [notice] = [n.message for n in app._notifications if n.title == "Run stopped at step 3"]
        assert notice == f"Esc then Ctrl+N resumes it in the wizard. {hint}"
        await pilot.press("d")
        await pilot.pause()
    assert said == [f"The run in {tmp_path / 'runs/tiny-demo'} stopped (not finished). {hint}"]


async def test_train_on_a_run_that_is_already_training_follows_it(tmp_path: Path, monkeypatch) -> None:
    """Re-opening the wizard on a live run said "Not started … Go back (Esc), change what it names"."""
    from textual.widgets import Log

    from engine.runs.start_refusals import RunLiveError
    from wizard_fakes import run_events

    monkeypatch.chdir(tmp_path)
    engine = FakeEngine(events=[e for e in run_events() if e.kind != "run_finished"])

    def live(profile, resume=None, waiting=None):
        raise RunLiveError(run_dir_for(profile))

    monkeypatch.setattr(engine, "start_run", live)
    session = Session.for_demo()
    app = make_app(engine, session, image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        app.goto(4)
        await settle(pilot, 0.3)
        screen = app.screen
        assert not [n for n in app._notifications if n.title == "Not started"]
        assert screen.folder == Path("runs/tiny-demo") and not screen.finished
        assert "A trainer is already running in runs/tiny-demo: following it." in screen.query_one(Log).lines
        await pilot.press("s")
        assert [c for c in engine.calls if c[0] == "control"] == [("control", "stop")]


async def test_quit_and_detach_name_the_run_by_its_absolute_path(tmp_path: Path, monkeypatch) -> None:
    """"dbtui attach runs/tiny-demo" fails in the shell an SSH drop reopens in ~."""
    from wizard_fakes import run_events

    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "runs" / "person-v2"
    expected = (f"the run goes on in {folder}: `dbtui attach {folder}` follows it, `dbtui stop {folder}` stops it.")
    for key, word in (("ctrl+q", "Quit"), ("d", "Detached")):
        session = Session.for_demo()
        session.run_folder = Path("runs/person-v2")  # the fake engine lists it as running
        engine = FakeEngine(events=[e for e in run_events() if e.kind != "run_finished"])
        app = make_app(engine, session, image_renderer="none")
        said = _exits(app, monkeypatch)
        async with app.run_test(size=SIZE) as pilot:
            app.goto(4)
            await settle(pilot, 0.3)
            await pilot.press(key)
            await pilot.pause()
        assert said == [f"{word}; {expected}"]


async def test_a_stop_before_the_first_step_does_not_promise_a_checkpoint(tmp_path: Path, monkeypatch) -> None:
    """Stopped during the class images or the caching, it said "Stopping after a checkpoint…": none is written."""
    from textual.widgets import Log

    from dbtui.screens.training import TrainingScreen
    from engine.events import PhaseStarted
    from wizard_fakes import run_events

    monkeypatch.chdir(tmp_path)
    caching = [PhaseStarted(time=1.0, phase="caching", total=14, description="encoding images")]
    training = [e for e in run_events() if e.kind != "run_finished"]
    for events, said in ((caching, "Stopping before the first step: nothing new to save, so no checkpoint is written…"),
                         (training, "Stopping after a checkpoint…")):
        session = Session()
        session.run_folder = tmp_path / "runs" / "x"
        engine = FakeEngine(events=events)
        app = make_app(engine, session, image_renderer="none")
        async with app.run_test(size=SIZE) as pilot:
            app.push_screen(TrainingScreen(session, engine))
            await settle(pilot, 0.3)
            await pilot.press("s")
            await pilot.pause()
            assert ("control", "stop") in engine.calls
            assert " ".join(line.strip() for line in app.screen.query_one(Log).lines).endswith(said)


async def test_the_resume_question_speaks_of_its_own_keys_not_of_the_cli(tmp_path: Path, monkeypatch) -> None:
    """It told a wizard user to run `dbtui resume` or `--set name=NEW_NAME`, while its own r resumes."""
    monkeypatch.chdir(tmp_path)
    engine = FakeEngine(has_checkpoints=True)
    app = make_app(engine, Session.for_demo(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        app.goto(4)
        await settle(pilot, 0.3)
        assert type(app.screen).__name__ == "ResumeScreen"
        assert str(app.screen.query_one("#resume-detail").render()) == "runs/tiny-demo already has checkpoints (up to step 4)."
    from engine.runs.start_refusals import RunExistsError

    assert str(RunExistsError(Path("runs/x"), 4)) == (  # the CLI's words stay
        "runs/x already has checkpoints (up to step 4). Resume it with `dbtui resume runs/x` (its own profile and "
        "overrides), or start a new run with `--set name=NEW_NAME`.")


async def test_esc_or_d_while_the_run_starts_waits_for_it(tmp_path: Path, monkeypatch) -> None:
    """Esc cancelled the start worker, whose thread still started the trainer: the wizard lost the run, a Stop pressed
    before it was never sent, and d said "Esc goes back to Parameters"."""
    from dbtui.screens.training import TrainingScreen

    monkeypatch.chdir(tmp_path)
    for keys in (("escape",), ("s", "escape"), ("d",)):
        engine = FakeEngine(events=[])
        app, session, release = _app_starting_a_run(tmp_path, engine, monkeypatch)
        async with app.run_test(size=SIZE) as pilot:
            app.push_screen(TrainingScreen(session, engine))
            await pilot.pause()
            for key in keys:
                await pilot.press(key)
            await pilot.pause()
            assert isinstance(app.screen, TrainingScreen)
            assert [n.message for n in app._notifications][-1] == "The run is starting…; a moment."
            release.set()
            await settle(pilot, 0.7)
            assert session.run_folder == tmp_path / "runs" / "person-v2"
            assert [c for c in engine.calls if c[0] == "control"] == ([("control", "stop")] if "s" in keys else [])


async def test_attaching_to_a_folder_whose_name_is_no_run_name_keeps_a_usable_draft(tmp_path: Path, monkeypatch) -> None:
    """Attached to "my run", the draft took the folder's name: Parameters refused Train, and the stopped run's hint
    "Esc then Ctrl+N resumes it in the wizard" was false."""
    import time

    from textual.widgets import Log

    from dbtui.engine_facade import RunSummary
    from engine.events import RunFinished

    run = tmp_path / "work" / "runs" / "my run"
    run.mkdir(parents=True)
    (run / "profile.toml").write_text(dumps_profile(Session.for_demo("runs").profile()), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    engine = FakeEngine(events=[RunFinished(time=time.time(), step=3, outputs={}, seconds=3.0, status="stopped")])
    monkeypatch.setattr(engine, "list_runs", lambda output_dir, on_skip=None: [RunSummary(run, "stopped", 3, 10)])
    app = make_app(engine, Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await _attach_first_run(app, pilot, run.parent)
        assert app.session.get("name") == "tiny-demo" and app.session.profile()
        [note] = [n.message for n in app._notifications if n.title == "Attached"]
        assert note.startswith("The run's folder name 'my run' is not a usable run name") and "dbtui resume" in note
        log = " ".join(app.screen.query_one(Log).lines)
        assert "Run stopped" in log and "Ctrl+N" not in log


async def test_a_stop_right_after_attaching_to_a_training_run_promises_its_checkpoint(tmp_path: Path, monkeypatch) -> None:
    """Its history not replayed yet, the screen said "Stopping before the first step: nothing … saved"."""
    import os
    import time

    from textual.widgets import Log

    from engine.runs.folder import RunState

    folder = RunFolder(tmp_path / "runs" / "x").create()
    folder.write_state(RunState(pid=os.getpid(), status="running", step=40, total_steps=100, started=time.time(),
                                heartbeat=time.time()))
    async with _stop_pressed_on_attached_run(folder) as (app, engine):
        assert ("control", "stop") in engine.calls
        assert app.screen.query_one(Log).lines[-1].strip() == "Stopping after a checkpoint…"


async def test_a_stop_after_the_last_step_says_the_run_is_finishing_not_stopping(tmp_path: Path, monkeypatch) -> None:
    """In the final export and scoring round the trainer reads no request: s said "Stopping after a checkpoint…", left
    a request never read, and the run finished."""
    import os
    import time

    from textual.widgets import Log

    from engine.events import PhaseFinished
    from engine.runs.folder import RunState
    from engine.runs.sinks import JsonlSink

    folder = RunFolder(tmp_path / "runs" / "x").create()
    started = time.time()
    sink = JsonlSink(folder.events)
    sink(PhaseFinished(phase="training", seconds=9.0, time=started + 1))
    sink.close()
    folder.write_state(RunState(pid=os.getpid(), status="running", step=10, total_steps=10, started=started,
                                heartbeat=time.time()))
    async with _stop_pressed_on_attached_run(folder) as (app, engine):
        assert ("control", "stop") not in engine.calls
        said = " ".join(line.strip() for line in app.screen.query_one(Log).lines)
        assert said.endswith("Training is over: the final export and preview round are being written, and the run ends "
                             "once they are done; it takes no stop request now.")


@contextlib.asynccontextmanager
async def _stop_pressed_on_attached_run(folder: RunFolder) -> AsyncIterator[tuple[App, FakeEngine]]:
    """The Training step attached to ``folder``'s run (no events read yet), s pressed: the app and its fake engine."""
    from dbtui.screens.training import TrainingScreen

    session = Session()
    session.run_folder = folder.path
    engine = FakeEngine(events=[])
    app = make_app(engine, session, image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        app.push_screen(TrainingScreen(session, engine))
        await pilot.pause()
        await pilot.press("s")
        await pilot.pause()
        yield app, engine
