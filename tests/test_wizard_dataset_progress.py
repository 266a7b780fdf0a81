"""The dataset step's Check and Prepare may run at once (a Check pressed while Prepare writes copies): one unnamed bar
took both jobs' progress, so a finished check left it full while Prepare, whose message says "the bar shows how far it
is", was at 40%."""

from __future__ import annotations

import threading
from pathlib import Path

from PIL import Image
from textual.widgets import ProgressBar

from dbtui.app import make_app
from dbtui.session import Session
from engine.events import PhaseProgress, PhaseStarted
from wizard_fakes import FakeEngine
from wizard_steps import at_step, settle, until


class HalfwayPrepare(FakeEngine):
    """Prepare reports 40 of 100 images, then waits for ``gate``; a check reports its 5 of 5 and ends."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def prepare_dataset(self, profile, concept: int, emit=None):
        emit(PhaseStarted(phase="prepare", total=100))
        emit(PhaseProgress(phase="prepare", done=40, total=100))
        assert self.gate.wait(10)
        return super().prepare_dataset(profile, concept, emit)

    def check_dataset(self, profile, concept: int, emit=None):
        emit(PhaseStarted(phase="check", total=5))
        emit(PhaseProgress(phase="check", done=5, total=5))
        return super().check_dataset(profile, concept, emit)


def _label(screen, job: str) -> str:
    return str(screen.query_one(f"#ds-{job}-progress-label").render())


async def test_check_and_prepare_each_show_their_own_named_progress(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "pics"
    folder.mkdir()
    Image.new("RGB", (64, 64)).save(folder / "ok.png")
    session = Session.for_demo()
    session.data["prior"] = {"enabled": False}
    session.data["concepts"] = [{"instance_dir": str(folder), "instance_prompt": "photo of zwx dog"}]
    engine = HalfwayPrepare()
    app = make_app(engine, session, image_renderer="none")
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            screen = await at_step(app, pilot, 2, "DatasetScreen")
            await pilot.click("#ds-prepare")
            prepare = screen.query_one("#ds-prepare-progress", ProgressBar)
            await until(pilot, lambda: prepare.progress == 40)
            assert _label(screen, "prepare") == "Preparing" and not screen.query_one("#ds-check-progress").display
            await pilot.press("ctrl+r")  # a check meanwhile
            await until(pilot, lambda: 0 in app.session.reports)
            await pilot.pause()
            assert prepare.display and (prepare.progress, prepare.total) == (40, 100)  # not the check's 5 of 5
            assert not screen.query_one("#ds-check-progress").display  # the check ended: its bar went with it
            engine.gate.set()
            await settle(pilot)
            assert not prepare.display and not screen.query_one("#ds-prepare-progress-label").display
    finally:
        engine.gate.set()
