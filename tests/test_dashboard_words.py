"""What the dashboard says of a run that is over, or never began: no stale ETA, one full stop."""

from __future__ import annotations

from pathlib import Path

from dbtui.app import make_app
from dbtui.screens.training import TrainingScreen
from dbtui.session import Session
from engine.events import RunFinished
from wizard_fakes import FakeEngine, run_events

SIZE = (80, 24)


def _terminal(app) -> list[str]:
    return [strip.text for strip in app.screen._compositor.render_strips()]


async def _dashboard(app, pilot, session: Session) -> TrainingScreen:
    screen = TrainingScreen(session, app.engine)
    app.push_screen(screen)
    await pilot.pause(0.3)
    await app.workers.wait_for_complete()
    await pilot.pause(0.2)
    return screen


async def test_a_stopped_run_shows_no_time_left(tmp_path: Path) -> None:
    """Stopped at step 3 of 6, the dashboard went on saying "ETA 2s"."""
    steps = [e for e in run_events() if e.kind not in ("run_finished",) and getattr(e, "step", 0) <= 3]
    engine = FakeEngine(events=[*steps, RunFinished(time=9.0, step=3, outputs={}, seconds=3.0, status="stopped")])
    session = Session()
    session.run_folder = tmp_path / "runs" / "x"
    app = make_app(engine, session, image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await _dashboard(app, pilot, session)
        assert screen.query_one("#tr-stats").status == "stopped"
        [eta] = [line.partition(" ETA ")[2].split()[0] for line in _terminal(app) if " ETA " in line]
        assert eta == "–"


async def test_a_run_that_did_not_start_is_said_with_one_full_stop(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    engine = FakeEngine()

    def refuse(profile, resume=None):
        raise OSError("Cannot write runs/tiny-demo: the disk is full.")

    engine.start_run = refuse
    session = Session.for_demo()
    app = make_app(engine, session, image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await _dashboard(app, pilot, session)
        [said] = [n.message for n in app._notifications if n.title == "Not started"]
        assert said.startswith("Cannot write runs/tiny-demo: the disk is full. Go back") and ".." not in said


async def test_the_loss_plot_of_a_short_run_marks_whole_steps(tmp_path: Path) -> None:
    """Three steps were marked 1.00 1.50 2.00 2.50 3.00."""
    engine = FakeEngine(events=run_events(3))
    session = Session()
    session.run_folder = tmp_path / "runs" / "x"
    app = make_app(engine, session, image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await _dashboard(app, pilot, session)
        await pilot.pause(0.4)  # the plot redraws on a timer
        lines = _terminal(app)
        [axis] = [index for index, line in enumerate(lines) if "└┬" in line]
        assert lines[axis + 1].partition("╰")[0].split() == ["1", "2", "3"]
