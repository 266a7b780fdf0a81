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


async def test_what_prepare_left_out_is_listed_with_why_and_what_to_do(tmp_path: Path, monkeypatch) -> None:
    """A caption Prepare could not read was dropped without a word (the copies' check then called it "missing"), and
    "Check says why" sent the user to a check of the copies, which cannot see the images left out of them."""
    from textual.widgets import DataTable

    monkeypatch.chdir(tmp_path)
    images = tmp_path / "pics"
    images.mkdir()
    for name in ("a", "b"):
        Image.new("RGB", (96, 96), (10, 120, 30)).save(images / f"{name}.png")
    (images / "a.txt").write_bytes("zwx café".encode("latin-1"))
    (images / "broken.png").write_bytes(b"\x89PNG not really")
    app = make_app(RealPrepareEngine(), Session.for_demo(), image_renderer="none")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _dataset_step(app, pilot, images)
        await pilot.click("#ds-prepare")
        await settle(pilot, 0.3)
        assert app.session.get("concepts.0.instance_dir") == str(tmp_path / "pics-prepared")
        said = " ".join(_messages(app))
        assert ("1 image(s) could not be prepared and 1 caption(s) could not be copied: the findings list each, with why "
                "and what to do") in said and "Check says why" not in said
        view = screen.query_one("#ds-findings")
        rows = {Path(finding.path).name: finding for finding in view.report.findings}
        assert rows["broken.png"].message.startswith("is not an image") and "then Prepare again" in rows["broken.png"].fix
        assert "is not UTF-8 text" in rows["a.txt"].message and "then Prepare again" in rows["a.txt"].fix
        table = screen.query_one("#findings-table", DataTable)
        table.focus()
        table.move_cursor(row=[Path(f.path).name for f in view.report.findings].index("broken.png"))
        await pilot.pause()
        assert "What to do: remove it or replace it with the real picture, then Prepare again" in str(
            screen.query_one("#findings-detail").render()).replace("\n", " ")


def test_the_errors_advice_promises_of_prepare_only_what_it_does() -> None:
    from dbtui.screens.dataset_advice import errors_advice
    from wizard_fakes import Finding, Report, Summary

    def advice(*codes: str) -> str:
        return errors_advice(Report("/x", tuple(Finding(f"/x/{c}.png", c, "error", c) for c in codes), Summary(2, 0, {})))

    assert advice("truncated") == "Prepare makes copies without the 1 unusable image(s)"
    assert advice("caption_unreadable") == "fix them as each finding says (Prepare does not)"
    assert advice("not_image", "caption_missing") == ("Prepare makes copies without the 1 unusable image(s); "
                                                     "fix the other 1 as each finding says (Prepare does not)")


async def test_copies_put_among_the_users_own_files_are_said_to_be_left_unmarked(tmp_path: Path, demo_data: Path,
                                                                                monkeypatch) -> None:
    """The CLI said it; the wizard did not, so Prepare pressed on the copies later made pics-prepared-prepared."""
    monkeypatch.chdir(tmp_path)
    images = Path(shutil.copytree(demo_data / "instance", tmp_path / "pics"))
    (tmp_path / "pics-prepared").mkdir()
    Image.new("RGB", (96, 96), (200, 20, 30)).save(tmp_path / "pics-prepared" / "mine.jpg")
    app = make_app(RealPrepareEngine(), Session.for_demo(), image_renderer="none")
    async with app.run_test(size=(80, 24)) as pilot:
        await _dataset_step(app, pilot, images)
        await pilot.click("#ds-prepare")
        await settle(pilot, 0.3)
        assert app.session.get("concepts.0.instance_dir") == str(tmp_path / "pics-prepared")
        said = " ".join(" ".join(_messages(app)).split())
        assert f"{tmp_path / 'pics-prepared'} already held files that are not copies prepared from" in said
        assert (tmp_path / "pics-prepared" / "mine.jpg").is_file()
