"""The parameters screen's fit test while it runs: one at a time."""

from __future__ import annotations

import threading

from textual.widgets import Button

from dbtui.app import make_app
from dbtui.session import Session
from wizard_fakes import FakeEngine
from wizard_steps import at_step

SIZE = (80, 24)
WAIT_S = 30.0  # a fit test the test forgot to end gives up after this


class HeldFitEngine(FakeEngine):
    """A fit test that runs until ``release`` is set, as a real one trains for a while."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.started = threading.Event()
        self.begun = 0  # fit tests started, ended or not

    def fit_test(self, profile, steps: int, emit=None, price_per_hour=None):
        self.begun += 1
        self.started.set()
        self.release.wait(WAIT_S)
        return super().fit_test(profile, steps, emit, price_per_hour)


async def test_a_running_fit_test_is_not_started_again_by_its_key() -> None:
    engine = HeldFitEngine()
    app = make_app(engine, Session.for_demo(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        try:
            await pilot.pause(0.2)
            screen = await at_step(app, pilot, 3, "ParametersScreen")
            await pilot.press("ctrl+f")
            await pilot.pause(0.3)
            assert engine.started.wait(5)
            await pilot.press("ctrl+f")
            await pilot.pause(0.2)
            await pilot.press("ctrl+f")
            await pilot.pause(0.3)
            assert engine.begun == 1
            assert screen.query_one("#par-fit", Button).disabled
            assert screen.check_action("fit", ()) is None  # shown in the footer, greyed
        finally:
            engine.release.set()
        await app.workers.wait_for_complete()
        await pilot.pause(0.3)
        assert not screen.query_one("#par-fit", Button).disabled and screen.check_action("fit", ())
        await pilot.press("ctrl+f")
        await app.workers.wait_for_complete()
        await pilot.pause(0.1)
        assert engine.begun == 2  # once it ended, the key starts the next
