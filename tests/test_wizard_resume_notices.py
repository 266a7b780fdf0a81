"""A run resumed from the dashboard moments after it stopped: what it said before is history, not news."""

from __future__ import annotations

import time
from pathlib import Path

from dbtui.app import make_app
from dbtui.session import Session
from engine.events import CheckpointSaved, RunFinished, RunStarted
from wizard_fakes import FakeEngine
from wizard_steps import settle

SIZE = (80, 24)


async def test_a_run_resumed_seconds_after_it_stopped_does_not_pop_its_stop_again(tmp_path: Path, monkeypatch) -> None:
    """Stopped, then resumed from the dashboard (Esc, Ctrl+N, r) within 10 s: the resumed run's dashboard replayed
    the stop and its checkpoint as news, "Run stopped at step 4: Esc then Ctrl+N resumes it", over the run resuming.
    Only what the trainer writes after the wizard starts it is news."""
    monkeypatch.chdir(tmp_path)
    stopped = time.time() - 3
    engine = FakeEngine(has_checkpoints=True)
    engine.events = [CheckpointSaved(time=stopped, step=4, path="runs/tiny-demo/checkpoints/step-00000004"),
                     RunFinished(time=stopped, step=4, outputs={}, seconds=3.0, status="stopped"),
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
    assert not [title for title, message in said if "stopped" in title or message.startswith("Checkpoint saved")], said
