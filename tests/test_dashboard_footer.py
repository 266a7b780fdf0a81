"""The dashboard's footer offers only the keys that do something: a run's controls while it trains."""

from __future__ import annotations

import time
from pathlib import Path

from textual.widgets._footer import FooterKey

from dbtui.app import make_app
from dbtui.session import Session
from wizard_fakes import FakeEngine, stopped_then_resumed
from test_wizard_resume_notices import _a_step_30_s_ago, _at_a_crashed_run
from wizard_steps import resume_from_the_dashboard, settle, until

SIZE = (80, 24)
CONTROLS = ("Stop & save", "Save now", "Sample")


def _footer(app) -> list[str]:
    return [key.description for key in app.screen.query(FooterKey)]


async def _footer_settled(pilot) -> list[str]:
    """The footer once it has been rebuilt: it recomposes after the bindings change, a frame later."""
    await until(pilot, lambda: "Detach" in _footer(pilot.app))
    await pilot.pause(0.1)
    return _footer(pilot.app)


async def test_an_ended_run_leaves_stop_save_and_sample_off_the_footer(tmp_path: Path, monkeypatch) -> None:
    """A finished run's footer still listed s Stop & save, c Save now and p Sample, greyed: keys that do nothing."""
    monkeypatch.chdir(tmp_path)
    app = make_app(FakeEngine(), Session.for_demo("runs"), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        app.goto(4)
        await settle(pilot, 0.3)
        assert app.screen.finished
        footer = await _footer_settled(pilot)
    assert not [label for label in CONTROLS if label in footer], footer


async def test_a_crashed_run_resumed_from_the_dashboard_gets_its_controls_back(tmp_path: Path, monkeypatch) -> None:
    app, _, _ = _at_a_crashed_run(tmp_path, monkeypatch, events=_a_step_30_s_ago())
    async with app.run_test(size=SIZE) as pilot:
        app.goto(4)
        await settle(pilot, 0.3)
        assert app.screen.finished
        ended = await _footer_settled(pilot)
        await resume_from_the_dashboard(app, pilot)
        assert not app.screen.finished
        resumed = await _footer_settled(pilot)
    assert not [label for label in CONTROLS if label in ended], ended
    assert all(label in resumed for label in CONTROLS), resumed


async def test_a_run_whose_history_holds_a_stop_then_its_resume_shows_its_controls(tmp_path: Path, monkeypatch) -> None:
    """The dashboard replays a resumed run's events: its stop ends the run on the screen, its resume starts it again."""
    monkeypatch.chdir(tmp_path)
    stopped = time.time() - 3
    engine = FakeEngine(has_checkpoints=True)
    engine.events = stopped_then_resumed(stopped)
    app = make_app(engine, Session.for_demo("runs"), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        app.goto(4)
        await settle(pilot, 0.3)
        await pilot.press("r")  # the resume question
        await settle(pilot, 0.3)
        assert not app.screen.finished
        footer = await _footer_settled(pilot)
    assert all(label in footer for label in CONTROLS), footer
