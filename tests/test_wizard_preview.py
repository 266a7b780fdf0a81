"""The wizard's picture of an image is the picture training reads: upright, in its colours; a folder is not called an image."""

from __future__ import annotations

from pathlib import Path

from PIL import Image
from textual.app import App, ComposeResult

from dbtui.widgets.preview import PREVIEW_SIDE, ImagePreview


class PreviewApp(App):
    image_renderer = "halfcell"

    def compose(self) -> ComposeResult:
        yield ImagePreview(id="preview")


async def test_a_phone_photo_is_shown_upright_and_a_large_one_reduced(tmp_path: Path) -> None:
    """A portrait phone photo is stored sideways with an EXIF turn; the preview showed it sideways."""
    photo = tmp_path / "phone.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # turn 90° clockwise to view
    Image.new("RGB", (60, 20), (200, 40, 40)).save(photo, exif=exif)
    large = tmp_path / "large.png"
    Image.new("RGB", (PREVIEW_SIDE * 3, PREVIEW_SIDE), (20, 40, 200)).save(large)
    app = PreviewApp()
    async with app.run_test() as pilot:
        preview = app.query_one(ImagePreview)
        preview.show(photo)
        await pilot.pause()
        assert preview.query_one(".image").image.size == (20, 60)
        preview.show(large)
        await pilot.pause()
        assert preview.query_one(".image").image.size == (PREVIEW_SIDE, PREVIEW_SIDE // 3)


async def test_a_folder_is_not_called_an_image_file(tmp_path: Path) -> None:
    """The doctor's finding for an empty folder names the folder: the preview said "empty: not an image file"."""
    from textual.widgets import Static

    (tmp_path / "empty").mkdir()
    app = PreviewApp()
    async with app.run_test() as pilot:
        preview = app.query_one(ImagePreview)
        preview.show(tmp_path / "empty")
        await pilot.pause()
        assert str(preview.query_one(Static).render()) == "empty/ is a folder: no picture to show"
