"""Sample now on a run that makes no previews: its trainer takes the request and renders nothing, so the dashboard
says so instead of sending it (the log said "Sample requested…" and nothing ever came)."""

from __future__ import annotations

from pathlib import Path

from dbtui.app import make_app
from dbtui.screens.training import TrainingScreen
from dbtui.session import Session
from engine.events import RunStarted
from wizard_fakes import FakeEngine, run_events
from wizard_steps import settle


def _live(profile: dict) -> list:
    """A run that has trained a step and goes on, started with ``profile``."""
    first, *rest = [e for e in run_events() if getattr(e, "step", 0) <= 1 and e.kind != "run_finished"]
    return [RunStarted(time=1.0, run_dir="runs/x", profile=profile, hardware={}, versions={}, total_steps=6), *rest]


async def _press_p(tmp_path: Path, profile: dict) -> tuple[FakeEngine, list[str]]:
    engine = FakeEngine(events=_live(profile))
    session = Session()
    session.run_folder = tmp_path / "runs" / "x"
    app = make_app(engine, session, image_renderer="none")
    async with app.run_test(size=(80, 24)) as pilot:
        app.push_screen(TrainingScreen(session, engine))
        await settle(pilot, 0.2)
        assert not app.screen.finished
        await pilot.press("p")
        await settle(pilot)
        return engine, [n.message for n in app._notifications]


async def test_sample_now_without_previews_says_why_and_sends_nothing(tmp_path: Path) -> None:
    engine, said = await _press_p(tmp_path, {"sampling": {"num_images": 0}, "evaluation": {"enabled": False}})
    assert ("control", "sample") not in engine.calls
    assert any("sampling.num_images is 0" in line for line in said)


async def test_sample_now_with_previews_or_scores_is_sent(tmp_path: Path) -> None:
    for profile in ({"sampling": {"num_images": 2}, "evaluation": {"enabled": False}},
                    {"sampling": {"num_images": 0}, "evaluation": {"enabled": True}}):
        engine, _ = await _press_p(tmp_path, profile)
        assert ("control", "sample") in engine.calls
