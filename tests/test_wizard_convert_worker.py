"""The Model step's Convert, then a check of another model while it converts: the check's worker was in the
conversion's group, so the conversion's worker showed cancelled while its thread went on converting."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from textual.widgets import Button
from textual.worker import WorkerState

from dbtui.app import make_app
from dbtui.session import Session
from test_wizard_sdxl import SIZE, at_a_new_profiles_model_step, check_model
from wizard_fakes import FakeEngine
from wizard_steps import settle, until


@dataclass
class HeldConversion(FakeEngine):
    """The fake, whose conversion waits for ``release``."""

    release: threading.Event = field(default_factory=threading.Event)

    def import_model(self, source: str, out_dir: Path, emit=None) -> Path:
        self.calls.append(("import_model", source))
        assert self.release.wait(30)
        return super().import_model(source, out_dir, emit)


async def test_a_check_while_a_file_converts_leaves_the_conversion_worker_to_finish(tmp_path: Path) -> None:
    (tmp_path / "m.safetensors").write_bytes(b"weights")
    engine = HeldConversion()
    app = make_app(engine, Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await at_a_new_profiles_model_step(pilot)
        try:
            await _convert_then_check(pilot, engine)
        finally:
            engine.release.set()  # the app, closing, waits for the conversion's thread


async def _convert_then_check(pilot, engine: HeldConversion) -> None:
    app = pilot.app
    await check_model(pilot, "m.safetensors")
    app.screen.query_one("#model-convert", Button).press()
    await until(pilot, lambda: ("import_model", "m.safetensors") in engine.calls)
    converting = [worker for worker in app.workers if worker.name == "convert"]
    assert len(converting) == 1 and converting[0].state == WorkerState.RUNNING
    app.screen.query_one("#model-source").focus()
    await pilot.press("end", "ctrl+u", *"builtin:tiny-sd1", "enter")  # no settle: that waits for the conversion
    await until(pilot, lambda: app.session.model_info.source == "builtin:tiny-sd1")
    engine.release.set()
    await until(pilot, lambda: converting[0].is_finished)
    await settle(pilot)
    assert converting[0].state == WorkerState.SUCCESS
    assert app.screen.converting is None
    assert any(note.message.startswith("Converted m.safetensors into") for note in app._notifications)
