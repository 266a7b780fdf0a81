"""Esc from a live run's dashboard, edits in Parameters, Train again: the edits are not silently dropped."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Input, Log

from dbtui.app import make_app
from dbtui.format import goes_on
from dbtui.screens.run_life import draft_differs
from dbtui.session import Session
from engine.profile import dumps_profile
from engine.runs.launcher import anchored_profile
from wizard_fakes import FakeEngine, run_events
from wizard_steps import back_from_a_live_run, settle

SIZE = (80, 24)


def _live_engine() -> FakeEngine:
    """Its run trains on (no run_finished); it lists person-v2 as running and tiny-demo as finished."""
    return FakeEngine(events=[e for e in run_events() if e.kind != "run_finished"])


async def _train_then_back(app, pilot, edits: dict[str, str]) -> None:
    """Train the draft, Esc while its run trains, type ``edits`` into Parameters, Train again."""
    await back_from_a_live_run(app, pilot)
    for field, value in edits.items():
        app.screen.query_one(f"#f-{field}", Input).value = value
    await settle(pilot, 0.3)
    await pilot.press("ctrl+n")
    await settle(pilot, 0.3)


class _OneRunEngine(FakeEngine):
    """Says one run's status alone; listing every run (the real engine reads each one's whole log) fails the test."""

    def list_runs(self, output_dir: str, on_skip=None):
        raise AssertionError("every run listed to learn one run's status")

    def run_status(self, folder: Path) -> str:
        return "running" if Path(folder).name == "person-v2" else "unknown"


def _session(tmp_path: Path, name: str) -> Session:
    session = Session.for_demo(str(tmp_path / "runs"))
    session.set("name", name)
    return session


async def test_train_naming_another_run_while_one_trains_asks_and_can_start_it(tmp_path: Path, monkeypatch) -> None:
    """The dashboard followed the old run again: run-b never started and nothing said so."""
    monkeypatch.chdir(tmp_path)
    engine = _live_engine()
    app = make_app(engine, _session(tmp_path, "person-v2"), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await _train_then_back(app, pilot, {"name": "run-b"})
        assert type(app.screen).__name__ == "LiveRunScreen"
        await pilot.press("t")
        await settle(pilot, 0.3)
        assert app.screen.folder == tmp_path / "runs" / "run-b"
        [note] = [n for n in app._notifications if n.title == "person-v2 goes on"]
        assert f"`dbtui stop {tmp_path / 'runs' / 'person-v2'}` stops it" in note.message
    assert [c for c in engine.calls if c[0] == "start_run"] == [("start_run", "person-v2"), ("start_run", "run-b")]


async def test_the_live_run_can_be_followed_again_or_left_for_parameters(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    engine = _live_engine()
    session = _session(tmp_path, "person-v2")
    app = make_app(engine, session, image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await _train_then_back(app, pilot, {"name": "run-b"})
        await pilot.press("escape")  # back: nothing starts, the live run is still the one the wizard knows
        await settle(pilot, 0.2)
        assert type(app.screen).__name__ == "ParametersScreen"
        assert session.run_folder == tmp_path / "runs" / "person-v2"
        await pilot.press("ctrl+n")
        await settle(pilot, 0.3)
        await pilot.press("f")
        await settle(pilot, 0.3)
        assert app.screen.folder == tmp_path / "runs" / "person-v2"
    assert [c for c in engine.calls if c[0] == "start_run"] == [("start_run", "person-v2")]


async def test_a_run_that_ended_meanwhile_lets_train_start_the_edited_run(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    engine = _live_engine()  # tiny-demo is listed as finished: it ended while the user was in Parameters
    app = make_app(engine, _session(tmp_path, "tiny-demo"), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await _train_then_back(app, pilot, {"name": "run-b"})
        assert type(app.screen).__name__ == "TrainingScreen"
        assert app.screen.folder == tmp_path / "runs" / "run-b"
    assert [c for c in engine.calls if c[0] == "start_run"] == [("start_run", "tiny-demo"), ("start_run", "run-b")]


async def test_edits_to_the_run_still_followed_are_said_to_apply_to_a_new_run(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    engine = _live_engine()
    session = _session(tmp_path, "person-v2")
    run = tmp_path / "runs" / "person-v2"
    run.mkdir(parents=True)
    (run / "profile.toml").write_text(dumps_profile(session.profile()), encoding="utf-8")
    app = make_app(engine, session, image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await _train_then_back(app, pilot, {})
        assert not [n for n in app._notifications if n.title == "Same run"]  # unchanged: nothing to say
        await pilot.press("escape")
        await settle(pilot, 0.2)
        app.screen.query_one("#f-training--max_train_steps", Input).value = "50"
        await settle(pilot, 0.3)
        await pilot.press("ctrl+n")
        await settle(pilot, 0.3)
        assert app.screen.folder == run
        [note] = [n for n in app._notifications if n.title == "Same run"]
        assert note.message.startswith("Still following person-v2: your changes apply to a new run")


def test_a_draft_naming_its_folders_relative_is_the_run_the_launcher_kept(tmp_path: Path, monkeypatch) -> None:
    """The run keeps its concepts' folders absolute (the launcher's anchored_profile): the same draft, written
    relative, asks for nothing else; Train follows the run without saying the changes apply to a new one."""
    monkeypatch.chdir(tmp_path)
    session = _session(tmp_path, "person-v2")
    session.set("concepts", [{"instance_dir": "pics", "instance_prompt": "photo of zwx dog", "class_dir": "dogs",
                              "class_prompt": "photo of a dog"}])
    run = tmp_path / "runs" / "person-v2"
    run.mkdir(parents=True)
    (run / "profile.toml").write_text(dumps_profile(anchored_profile(session.profile())), encoding="utf-8")
    assert f'"{tmp_path / "dogs"}"' in (run / "profile.toml").read_text(encoding="utf-8")
    assert not draft_differs(session, run)
    session.set("concepts.0.instance_prompt", "photo of zwx cat")
    assert draft_differs(session, run)


async def test_train_and_quit_read_the_followed_runs_status_alone(tmp_path: Path, monkeypatch) -> None:
    """Train and Ctrl+Q listed every run in the folder, on the UI thread, to learn whether the one followed trains."""
    monkeypatch.chdir(tmp_path)
    engine = _OneRunEngine(events=[e for e in run_events() if e.kind != "run_finished"])
    app = make_app(engine, _session(tmp_path, "person-v2"), image_renderer="none")
    said = []
    async with app.run_test(size=SIZE) as pilot:
        await _train_then_back(app, pilot, {"name": "run-b"})
        assert type(app.screen).__name__ == "LiveRunScreen"
        await pilot.press("escape")
        await settle(pilot, 0.2)
        monkeypatch.setattr(app, "exit", lambda message=None: said.append(message))
        await pilot.press("ctrl+q")
        await settle(pilot, 0.2)
    assert said == [f"Quit; {goes_on(tmp_path / 'runs' / 'person-v2')}"]


async def test_train_of_the_same_run_that_ended_meanwhile_starts_as_for_a_fresh_draft(tmp_path: Path,
                                                                                      monkeypatch) -> None:
    """Train went back to the ended run's dashboard (with edits, saying "Still following" it): it starts the draft's
    run as Train of a fresh draft does, which for a finished run of that name says so."""
    monkeypatch.chdir(tmp_path)
    engine = _live_engine()  # tiny-demo is listed as finished: it ended while the user was in Parameters
    session = _session(tmp_path, "tiny-demo")
    app = make_app(engine, session, image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await back_from_a_live_run(app, pilot)
        engine.finished_run = True
        app.screen.query_one("#f-training--max_train_steps", Input).value = "50"
        await settle(pilot, 0.3)
        await pilot.press("ctrl+n")
        await settle(pilot, 0.3)
        assert not [n for n in app._notifications if n.title == "Same run"]
        assert session.run_folder is None and type(app.screen).__name__ == "TrainingScreen"
        said = " ".join(app.screen.query_one(Log).lines)  # joined: the log folds a long tmp_path anywhere
        assert said.startswith("Not started:") and said.endswith("Go back (Esc) to Parameters and give the run a new name.")
    assert [c for c in engine.calls if c[0] == "start_run"] == [("start_run", "tiny-demo")] * 2
