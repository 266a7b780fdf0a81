"""The palette's "Go to" a step passes the checks of the keys that go there: Next's forward, Back's backward."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Input

from dbtui.app import make_app
from dbtui.session import Session
from wizard_fakes import FakeEngine, run_events
from wizard_steps import at_step, back_from_a_live_run, settle

SIZE = (80, 24)


def _goes_to(app) -> dict[str, object]:
    """The palette's commands that go to a step."""
    return {c.title: c.callback for c in app.get_system_commands(app.screen) if c.help.endswith("of the wizard")}


async def test_go_to_training_asks_as_train_does_while_another_run_trains(tmp_path: Path, monkeypatch) -> None:
    """The palette went straight to the dashboard: it followed the old run, and the edited one never started."""
    monkeypatch.chdir(tmp_path)
    engine = FakeEngine(events=[e for e in run_events() if e.kind != "run_finished"])  # person-v2 trains on
    session = Session.for_demo(str(tmp_path / "runs"))
    session.set("name", "person-v2")
    app = make_app(engine, session, image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await back_from_a_live_run(app, pilot)
        app.screen.query_one("#f-name", Input).value = "run-b"
        await settle(pilot, 0.3)
        _goes_to(app)["Go to training"]()
        await settle(pilot, 0.3)
        assert type(app.screen).__name__ == "LiveRunScreen"


async def test_go_to_passes_the_dataset_steps_checks_and_no_step_is_skipped(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    session = Session.for_demo()
    session.set("concepts", [{"instance_dir": "", "instance_prompt": "photo of zwx dog"}])
    app = make_app(FakeEngine(), session, image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await at_step(app, pilot, 2, "DatasetScreen")
        goes_to = _goes_to(app)
        assert sorted(goes_to) == ["Go to hardware", "Go to model", "Go to parameters"]
        goes_to["Go to parameters"]()
        await settle(pilot)
        assert app.screen is screen
        assert [n.message for n in app._notifications][-1] == "Concept 1 has no images folder."
        goes_to["Go to hardware"]()
        await settle(pilot)
        assert type(app.screen).__name__ == "HardwareScreen" and session.step == 0


async def test_ctrl_p_from_the_help_over_the_palette_goes_back_to_that_palette(tmp_path: Path, monkeypatch) -> None:
    """F1 in the palette explains it over it; Ctrl+P there pushed a second palette, whose id clashed with the first's:
    the app crashed (DuplicateIds)."""
    from textual.command import CommandPalette

    from dbtui.screens.help import HelpScreen

    monkeypatch.chdir(tmp_path)
    app = make_app(FakeEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+p", "f1")
        await settle(pilot)
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("ctrl+p")
        await settle(pilot)
        assert isinstance(app.screen, CommandPalette)
        assert sum(isinstance(screen, CommandPalette) for screen in app.screen_stack) == 1
