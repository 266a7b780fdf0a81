"""The wizard's picture of an image is the picture training reads: upright, in its colours; a folder is not called an image."""

from __future__ import annotations

from pathlib import Path

from PIL import Image
from textual.app import App, ComposeResult

import dbtui.widgets.preview as preview_module
from dbtui.widgets.preview import PREVIEW_SIDE, ImagePreview
from wizard_steps import settle


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
        await settle(pilot)
        assert preview.query_one(".image").image.size == (20, 60)
        preview.show(large)
        await settle(pilot)
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


async def test_pictures_load_off_the_main_thread_and_only_the_latest_is_shown(tmp_path: Path, monkeypatch) -> None:
    """A 6000×4000 PNG froze the whole UI for 1.85 s per highlighted image: it was decoded on the main thread. A slow
    load passed over for another image must not replace that image's picture when it ends."""
    import threading

    slow, quick = tmp_path / "slow.png", tmp_path / "quick.png"
    Image.new("RGB", (30, 30), (200, 0, 0)).save(slow)
    Image.new("RGB", (40, 20), (0, 0, 200)).save(quick)
    release, threads = threading.Event(), []
    real_load = preview_module.load_rgb

    def load(path, side):
        threads.append(threading.current_thread())
        if Path(path) == slow:
            release.wait(5)  # on the main thread (the bug) this stalls the test, and the thread check fails
        return real_load(path, side)

    monkeypatch.setattr(preview_module, "load_rgb", load)
    app = PreviewApp()
    async with app.run_test() as pilot:
        preview = app.query_one(ImagePreview)
        preview.show(slow)
        await pilot.pause()
        assert "loading slow.png" in str(preview.query_one("Static").render())
        preview.show(quick)
        await pilot.pause(0.2)
        release.set()
        await settle(pilot)
        assert threading.main_thread() not in threads
        [shown] = preview.query(".image")
        assert shown.image.size == (40, 20) and preview.path == quick


async def test_a_broken_link_is_called_a_broken_link_not_a_non_image(tmp_path: Path) -> None:
    """The doctor said 'dangling.jpg is a broken symbolic link'; its preview said 'not an image file'."""
    from textual.widgets import Static

    (tmp_path / "dangling.jpg").symlink_to(tmp_path / "nowhere.jpg")
    app = PreviewApp()
    async with app.run_test() as pilot:
        preview = app.query_one(ImagePreview)
        preview.show(tmp_path / "dangling.jpg")
        await pilot.pause()
        assert str(preview.query_one(Static).render()) == (
            "dangling.jpg: a broken link: the file it points to does not exist")
        preview.show(tmp_path / "gone.png")
        await pilot.pause()
        assert str(preview.query_one(Static).render()) == "gone.png: no longer there"


async def test_a_link_loop_is_called_a_loop_as_the_doctor_calls_it(tmp_path: Path) -> None:
    """a.jpg -> b.jpg -> a.jpg: the doctor said it leads back to itself; its preview said the file it points to does
    not exist, so the user looked for a missing file."""
    from textual.widgets import Static

    (tmp_path / "a.jpg").symlink_to(tmp_path / "b.jpg")
    (tmp_path / "b.jpg").symlink_to(tmp_path / "a.jpg")
    app = PreviewApp()
    async with app.run_test() as pilot:
        preview = app.query_one(ImagePreview)
        preview.show(tmp_path / "a.jpg")
        await pilot.pause()
        assert str(preview.query_one(Static).render()) == "a.jpg: a broken link: it leads back to itself (a loop)"


SHOW_BEHIND = """
import asyncio, sys
from pathlib import Path
from textual.widgets import Static
sys.path.insert(0, sys.argv[1])
from test_wizard_preview import PreviewApp, ImagePreview

async def main():
    app = PreviewApp()
    async with app.run_test() as pilot:
        preview = app.query_one(ImagePreview)
        preview.show(Path("above/cls"))
        await pilot.pause()
        print(preview.query_one(Static).render())
asyncio.run(main())
"""


def test_a_folder_behind_one_the_user_may_not_enter_shows_nothing_and_breaks_nothing(tmp_path: Path) -> None:
    """The Dataset step's check names a class folder behind a folder that lets the user not in as its first finding;
    highlighting it crashed the wizard: Python 3.11's is_dir raised PermissionError in the preview."""
    import os
    import subprocess
    import sys

    from tests.as_a_user import AS_A_USER, ROOT

    (tmp_path / "above" / "cls").mkdir(parents=True)
    (tmp_path / "above").chmod(0o600)
    try:
        done = subprocess.run([*AS_A_USER, sys.executable, "-c", SHOW_BEHIND, str(Path(__file__).parent)], cwd=tmp_path,
                              capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    finally:
        (tmp_path / "above").chmod(0o755)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "cls: nothing to show (Permission denied)"
