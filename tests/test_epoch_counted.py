"""Epochs as a person counts them: the dashboard of a one-epoch run said "step 6/6 (epoch 0)", and `dbtui run`'s
live panel "epoch 0", where the run's events number epochs from 0."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from dbtui.app import make_app
from dbtui.console import RichDashboard
from dbtui.screens.training import TrainingScreen
from dbtui.session import Session
from engine.events import StepEnded
from wizard_fakes import FakeEngine, run_events
from wizard_steps import settle

SIZE = (80, 24)


def step_in_epoch(epoch: int) -> StepEnded:
    return StepEnded(step=6, total_steps=12, epoch=epoch, loss=0.1, smoothed_loss=0.1, lr=1e-4, it_per_s=1.0, eta_s=6.0)


async def test_the_dashboard_counts_the_first_epoch_as_1(tmp_path: Path) -> None:
    session = Session()
    session.run_folder = tmp_path / "runs" / "x"
    app = make_app(FakeEngine(events=run_events()), session, image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        app.push_screen(TrainingScreen(session, app.engine))
        await settle(pilot, 0.2)
        lines = [strip.text for strip in app.screen._compositor.render_strips()]
        [step] = [line for line in lines if "step" in line and "6/6" in line]
        assert "(epoch 1)" in step, step


def test_the_live_panel_of_dbtui_run_counts_epochs_as_the_dashboard_does() -> None:
    said = []
    for epoch in (0, 1):
        dashboard = RichDashboard("demo", console=Console(file=io.StringIO(), width=100))
        dashboard(step_in_epoch(epoch))
        rendered = io.StringIO()
        Console(file=rendered, width=100, color_system=None).print(dashboard._render())
        said.append(rendered.getvalue())
    assert "6/12  epoch 1" in said[0] and "6/12  epoch 2" in said[1]
