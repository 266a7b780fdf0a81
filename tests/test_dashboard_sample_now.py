"""Sample now on a run that makes no previews: its trainer takes the request and renders nothing, so the dashboard
says so instead of sending it (the log said "Sample requested…" and nothing ever came). Save now says, as `dbtui save`
does, that later saves delete the checkpoint it asks for."""

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


async def _press_p(tmp_path: Path, profile: dict, key: str = "p") -> tuple[FakeEngine, list[str]]:
    engine = FakeEngine(events=_live(profile))
    session = Session()
    session.run_folder = tmp_path / "runs" / "x"
    app = make_app(engine, session, image_renderer="none")
    async with app.run_test(size=(80, 24)) as pilot:
        app.push_screen(TrainingScreen(session, engine))
        await settle(pilot, 0.2)
        assert not app.screen.finished
        await pilot.press(key)
        await settle(pilot)
        logged = " ".join(" ".join(app.screen.query_one("#tr-log").lines).split())  # its lines wrapped at the width
        return engine, [n.message for n in app._notifications] + [logged]


async def test_sample_now_without_previews_says_why_and_sends_nothing(tmp_path: Path) -> None:
    engine, said = await _press_p(tmp_path, {"sampling": {"num_images": 0}, "evaluation": {"enabled": False}})
    assert ("control", "sample") not in engine.calls
    assert any("sampling.num_images is 0" in line for line in said)


async def test_sample_now_with_previews_or_scores_is_sent(tmp_path: Path) -> None:
    for profile in ({"sampling": {"num_images": 2}, "evaluation": {"enabled": False}},
                    {"sampling": {"num_images": 0}, "evaluation": {"enabled": True}}):
        engine, _ = await _press_p(tmp_path, profile)
        assert ("control", "sample") in engine.calls


async def test_save_now_says_that_later_saves_delete_it(tmp_path: Path) -> None:
    # The dashboard said only "Checkpoint requested…": with keep_last_n = 1 the checkpoint asked for went at the next
    # periodic save, unsaid, while `dbtui save` says it (both from engine.runs.control.save_kept_words).
    from engine.profile import save_profile
    from engine.runs.folder import RunFolder
    from training_helpers import tiny_profile

    run = RunFolder(tmp_path / "runs" / "x").create()
    save_profile(tiny_profile(tmp_path, saving={"keep_last_n": 1}), run.profile)
    engine, said = await _press_p(tmp_path, {"sampling": {"num_images": 2}}, key="c")
    assert ("control", "save") in engine.calls
    words = ("Checkpoint requested… The run keeps its latest 1 checkpoint (saving.keep_last_n): this one is deleted once 1 "
             f"newer is saved; `dbtui export {run.path} --step STEP` keeps its model for good.")
    # Spaces left out: the log wraps a path longer than its width inside the path.
    assert any("".join(words.split()) in "".join(line.split()) for line in said), said
