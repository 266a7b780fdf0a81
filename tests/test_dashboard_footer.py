"""The dashboard's footer offers only the keys that do something: a run's controls while it trains. A run resumed
from the dashboard gets them back: test_wizard_resume_notices checks so on the resumes it drives (a crashed run, a
stopped one), which this file's tests would drive again."""

from __future__ import annotations

from pathlib import Path

from textual.widgets._footer import FooterKey

from dbtui.app import make_app
from dbtui.session import Session
from wizard_fakes import FakeEngine
from wizard_steps import settle, until

SIZE = (80, 24)
CONTROLS = ("Stop & save", "Save now", "Sample")


def _footer(app) -> list[str]:
    return [key.description for key in app.screen.query(FooterKey)]


async def footer_settled(pilot) -> list[str]:
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
        footer = await footer_settled(pilot)
    assert not [label for label in CONTROLS if label in footer], footer
