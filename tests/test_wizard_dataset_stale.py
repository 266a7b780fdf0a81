"""The dataset step after caption review dropped a concept's report (its captions changed): the findings are not
shown as current, and Next does not let through a folder whose last check found no usable image or errors."""

from __future__ import annotations

from pathlib import Path

from PIL import Image
from textual.screen import Screen
from textual.widgets import DataTable, Input

from dbtui.app import make_app
from dbtui.session import Session
from wizard_fakes import FakeEngine
from wizard_steps import at_step, settle


async def _checked(app, pilot, folder: Path):
    screen = await at_step(app, pilot, 2, "DatasetScreen")
    screen.query_one("#ds-instance_dir", Input).value = str(folder)
    await settle(pilot)
    await pilot.press("ctrl+r")
    await settle(pilot)
    return screen


async def _captions_changed(app, pilot) -> None:
    """What caption review does to the session when its captions changed: it drops the concept's report."""
    await app.push_screen(Screen())
    app.session.reports.pop(0, None)
    app.pop_screen()
    await settle(pilot)


def _folder(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / "pics"
    folder.mkdir()
    Image.new("RGB", (64, 64), (90, 20, 20)).save(folder / name)  # FakeEngine: an image named small* is an error
    return folder


async def test_a_dropped_report_of_a_folder_with_no_usable_image_is_checked_again_on_next(tmp_path: Path,
                                                                                          monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    app = make_app(FakeEngine(), Session.for_demo(), image_renderer="none")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _checked(app, pilot, _folder(tmp_path, "small.png"))
        assert str(screen.query_one("#findings-summary").render()).startswith("1 images, 0 usable")
        await _captions_changed(app, pilot)
        assert app.screen is screen
        assert str(screen.query_one("#findings-summary").render()) == "captions changed since the check: ctrl+r checks again"
        assert screen.query_one("#findings-table", DataTable).row_count == 0
        checks = app.engine.calls.count(("check_dataset", 0))
        await pilot.press("ctrl+n")
        assert app.screen is screen
        assert any(n.message.startswith("The last check found no usable images before the last changes: checking again")
                   for n in app._notifications)
        await settle(pilot)
        assert app.engine.calls.count(("check_dataset", 0)) == checks + 1
        assert str(screen.query_one("#findings-summary").render()).startswith("1 images, 0 usable")
        await pilot.press("ctrl+n")
        await settle(pilot)
        assert app.screen is screen
        assert list(app._notifications)[-1].message.startswith("No usable images in this concept")


async def test_a_dropped_report_of_a_clean_folder_lets_next_go_on(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    app = make_app(FakeEngine(), Session.for_demo(), image_renderer="none")
    async with app.run_test(size=(80, 24)) as pilot:
        folder = _folder(tmp_path, "fine.png")
        (folder / "fine.txt").write_text("zwx")
        await _checked(app, pilot, folder)
        await _captions_changed(app, pilot)
        checks = app.engine.calls.count(("check_dataset", 0))
        await pilot.press("ctrl+n")
        await settle(pilot)
        assert type(app.screen).__name__ == "ParametersScreen"
        assert app.engine.calls.count(("check_dataset", 0)) == checks


async def test_another_concept_never_shows_the_findings_of_the_one_before(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    app = make_app(FakeEngine(), Session.for_demo(), image_renderer="none")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _checked(app, pilot, _folder(tmp_path, "small.png"))
        screen.query_one("#ds-add").scroll_visible(animate=False)  # a check scrolls its findings into view: back up
        await settle(pilot)
        await pilot.click("#ds-add")
        await settle(pilot)
        assert str(screen.query_one("#findings-summary").render()) == "not checked yet"
        assert screen.query_one("#findings-table", DataTable).row_count == 0
