"""Prepare on the dataset step: pressed again it prepares the originals again into the same folder, and what it
could not prepare (images, captions) is listed with why and what to do, not left to a check that cannot see it."""

from __future__ import annotations

import shutil
from pathlib import Path

from PIL import Image
from textual.widgets import Input

from dbtui.app import make_app
from dbtui.engine_facade import RealEngine
from dbtui.session import Session
from wizard_fakes import FakeEngine
from wizard_steps import at_step, settle


class RealPrepareEngine(FakeEngine):
    """The fake engine with the real Prepare: what it makes of the folder is the test."""

    def prepare_dataset(self, profile, concept: int, emit=None):
        return RealEngine().prepare_dataset(profile, concept, emit=emit)


def _messages(app) -> list[str]:
    return [notification.message for notification in app._notifications]


async def _dataset_step(app, pilot, folder: Path):
    screen = await at_step(app, pilot, 2, "DatasetScreen")
    screen.query_one("#ds-instance_dir", Input).value = str(folder)
    await settle(pilot)
    return screen


async def test_prepare_again_prepares_the_originals_into_the_same_folder(tmp_path: Path, demo_data: Path,
                                                                       monkeypatch) -> None:
    """Pressed twice, Prepare made copies of the copies in pics-prepared-prepared, and never saw new originals."""
    monkeypatch.chdir(tmp_path)
    images = Path(shutil.copytree(demo_data / "instance", tmp_path / "pics"))
    prepared = tmp_path / "pics-prepared"
    app = make_app(RealPrepareEngine(), Session.for_demo(), image_renderer="none")
    async with app.run_test(size=(80, 24)) as pilot:
        await _dataset_step(app, pilot, images)
        await pilot.click("#ds-prepare")
        await settle(pilot, 0.3)
        assert app.session.get("concepts.0.instance_dir") == str(prepared)
        before = len(list(prepared.glob("*.png")))
        Image.new("RGB", (96, 96), (10, 120, 30)).save(images / "added later.png")
        await pilot.click("#ds-prepare")
        await settle(pilot, 0.3)
        assert app.session.get("concepts.0.instance_dir") == str(prepared)
        assert not (tmp_path / "pics-prepared-prepared").exists()
        assert len(list(prepared.glob("*.png"))) == before + 1 and (prepared / "added later.png").is_file()
