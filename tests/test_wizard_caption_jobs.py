"""The caption screen's jobs over every caption keep the app answering: after a bulk edit fails, the captions are
read again in a worker (on the UI thread, 3,000 of them froze the app for seconds)."""

from __future__ import annotations

import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path

from textual.widgets import Input, OptionList, Static, TextArea

from dbtui.app import make_app
from dbtui.screens.captions import CaptionScreen
from dbtui.session import Session
from engine.dataset.errors import CaptionError
from wizard_fakes import FakeEngine, SimpleCaptions
from wizard_steps import settle, until

SIZE = (80, 24)
HOLD_S = 5.0  # how long a held read waits at most: the UI thread's freeze, before the fix (the test fails)


class HalfWayCaptions(SimpleCaptions):
    """A bulk edit that writes the first caption, then fails (a full disk); the reads after it wait for ``release``."""

    def __init__(self, folder: str, extension: str, release: threading.Event) -> None:
        super().__init__(folder, extension)
        self.release, self.failed, self.held = release, False, False

    def add_tag(self, tag: str, front: bool = True, *, emit=None):
        self.write(self.images()[0], f"{tag}, written before the failure")
        self.failed = True
        raise CaptionError("cannot write captions: No space left on device")

    def read(self, image) -> str | None:
        if self.failed and not self.held:
            self.held = True  # the first read only: held once, a frozen UI thread is seen without waiting for each
            self.release.wait(HOLD_S)
        return super().read(image)


@dataclass
class HalfWayEngine(FakeEngine):
    release: threading.Event = field(default_factory=threading.Event)

    def caption_store(self, folder: str, extension: str) -> HalfWayCaptions:
        return HalfWayCaptions(folder, extension, self.release)



def _empty_images(tmp_path: Path, count: int) -> Path:
    images = tmp_path / "images"
    images.mkdir()
    for i in range(count):
        (images / f"img_{i:04d}.png").touch()
    return images


def _batches(monkeypatch, at_first_batch) -> list[int]:
    """The sizes of the batches the image list is filled with; ``at_first_batch`` is called as the first is added."""
    added: list[int] = []
    add_options = OptionList.add_options

    def spy(self: OptionList, options):
        options = list(options)
        if self.id == "cap-images" and options:  # not the empty list its constructor adds
            if not added:
                at_first_batch()
            added.append(len(options))
        return add_options(self, options)

    monkeypatch.setattr(OptionList, "add_options", spy)
    return added


async def test_after_a_failed_bulk_edit_the_captions_are_read_again_in_a_worker(tmp_path: Path,
                                                                              demo_data: Path) -> None:
    images = Path(shutil.copytree(demo_data / "instance", tmp_path / "images"))
    engine = HalfWayEngine()
    app = make_app(engine, Session.for_demo(), image_renderer="none")
    try:
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            screen = CaptionScreen(app.session, app.engine, str(images))
            app.push_screen(screen)
            await pilot.pause()
            await until(pilot, lambda: screen.job is None)
            await settle(pilot)
            screen.query_one("#cap-tag", Input).value = "sks"
            await pilot.click("#cap-add")
            await until(pilot, lambda: any("No space left" in n.message for n in app._notifications))
            assert not engine.release.is_set()
            assert screen.job is not None and screen.query_one("#cap-text", TextArea).read_only
            assert "Reading the captions again" in str(screen.query_one("#cap-status", Static).render())
            assert screen.query_one("#cap-progress").display

            engine.release.set()
            await until(pilot, lambda: screen.job is None)
            await settle(pilot)
            first = screen.query_one("#cap-images", OptionList).get_option_at_index(0)
            assert screen.rows.get(Path(first.id or ""))[0] == "sks, written before the failure"
            assert screen.query_one("#cap-text", TextArea).text == "sks, written before the failure"
            assert not screen.query_one("#cap-text", TextArea).read_only
            assert not screen.query_one("#cap-progress").display
    finally:
        engine.release.set()


async def test_the_list_of_3000_images_fills_in_batches_while_the_screen_answers(tmp_path: Path, monkeypatch) -> None:
    """3,000 rows added at once held the event loop until all were laid out: no key, no redraw meanwhile. Between
    two batches the screen's own queue runs: a callback asked for after the first batch runs before the last."""
    images = _empty_images(tmp_path, 3000)
    (images / "img_0000.txt").write_text("zwx, first\n", encoding="utf-8")
    seen: list[int] = []  # the rows listed when the screen's queue ran the callback

    def listed_now() -> None:
        seen.append(screen.query_one("#cap-images", OptionList).option_count)

    batches = _batches(monkeypatch, lambda: screen.call_later(listed_now))
    app = make_app(FakeEngine(), Session.for_demo(), image_renderer="none")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = CaptionScreen(app.session, app.engine, str(images))
        app.push_screen(screen)
        await pilot.pause()
        await until(pilot, lambda: screen.job is None)
        await settle(pilot)
        listed = screen.query_one("#cap-images", OptionList)
        assert sum(batches) == listed.option_count == 3000 and len(batches) > 1
        assert seen and seen[0] < 3000, seen
        assert listed.highlighted == 0 and screen.query_one("#cap-text", TextArea).text == "zwx, first"
        assert not screen.query_one("#cap-text", TextArea).read_only


async def test_leaving_while_the_list_fills_goes_back_and_raises_nothing(tmp_path: Path, monkeypatch) -> None:
    images = _empty_images(tmp_path, 1000)
    added = _batches(monkeypatch, lambda: screen.call_later(screen.action_close))  # Esc, between two batches
    app = make_app(FakeEngine(), Session.for_demo(), image_renderer="none")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        before = app.screen
        screen = CaptionScreen(app.session, app.engine, str(images))
        app.push_screen(screen)
        await until(pilot, lambda: app.screen is before)
        await settle(pilot)
        assert app.is_running and not screen.is_attached
        assert sum(added) < 1000  # the rest never added to a screen gone
        assert not [n for n in app._notifications if n.severity == "error"]


async def test_the_row_moved_to_while_the_list_fills_stays_highlighted(tmp_path: Path, monkeypatch) -> None:
    """Between two batches the keys answer: the last batch jumped the highlight back to the first row, and cleared the
    status of the image shown."""
    images = _empty_images(tmp_path, 1000)
    (images / "img_0003.txt").write_text("fourth\n", encoding="utf-8")

    def down_three_rows() -> None:
        for _ in range(4):  # the first highlights row 0
            screen.query_one("#cap-images", OptionList).action_cursor_down()

    added = _batches(monkeypatch, lambda: screen.call_later(down_three_rows))  # between the first batch and the next
    app = make_app(FakeEngine(), Session.for_demo(), image_renderer="none")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = CaptionScreen(app.session, app.engine, str(images))
        app.push_screen(screen)
        await pilot.pause()
        await until(pilot, lambda: screen.job is None)
        await settle(pilot)
        listed = screen.query_one("#cap-images", OptionList)
        assert len(added) > 1 and listed.option_count == 1000
        assert listed.highlighted == 3 and screen.query_one("#cap-text", TextArea).text == "fourth"
        assert str(screen.query_one("#cap-status", Static).render()) == "Ctrl+S saves this caption."
