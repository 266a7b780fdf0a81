"""The caption screen reads the captions in a worker: 3,000 of them on a slow disk froze the whole app for seconds
on the UI thread, Esc and every key included. Here the first caption read waits for ``release`` (that slow disk)."""

from __future__ import annotations

import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path

from textual.widgets import Input, OptionList, Static, TextArea

from dbtui.app import make_app
from dbtui.screens.captions import CaptionScreen
from dbtui.session import Session
from wizard_fakes import FakeEngine, SimpleCaptions
from wizard_steps import settle, until

SIZE = (80, 24)
HOLD_S = 5.0  # how long the held read waits at most: the UI thread's freeze, before the worker (the test fails)


class HeldCaptions(SimpleCaptions):
    def __init__(self, folder: str, extension: str, release: threading.Event, done: threading.Event) -> None:
        super().__init__(folder, extension)
        self.release, self.done, self.reads = release, done, 0

    def read(self, image) -> str | None:
        self.reads += 1
        if self.reads == 1:
            self.release.wait(HOLD_S)
        text = super().read(image)
        if self.reads == len(self.images()):
            self.done.set()
        return text


@dataclass
class HeldEngine(FakeEngine):
    release: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)  # every caption read once

    def caption_store(self, folder: str, extension: str) -> HeldCaptions:
        return HeldCaptions(folder, extension, self.release, self.done)


def _images(tmp_path: Path, demo_data: Path) -> Path:
    return Path(shutil.copytree(demo_data / "instance", tmp_path / "images"))


async def _held_screen(app, pilot, images: Path) -> CaptionScreen:
    screen = CaptionScreen(app.session, app.engine, str(images))
    app.push_screen(screen)
    await pilot.pause()
    return screen


async def test_the_screen_answers_while_the_captions_are_read_and_shows_them_after(tmp_path: Path,
                                                                                   demo_data: Path) -> None:
    images = _images(tmp_path, demo_data)
    captions = {path: path.read_text(encoding="utf-8") for path in images.glob("*.txt")}
    engine = HeldEngine()
    app = make_app(engine, Session.for_demo(), image_renderer="none")
    try:
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            screen = await _held_screen(app, pilot, images)
            assert not engine.done.is_set(), "the captions were read before the screen answered"
            assert "Reading the captions" in str(screen.query_one("#cap-status", Static).render())
            assert screen.query_one("#cap-images", OptionList).option_count == 0
            assert screen.query_one("#cap-text", TextArea).read_only
            # A bulk edit needs the captions read: it waits, and says so, instead of starting.
            screen.query_one("#cap-tag", Input).value = "sks"
            await pilot.click("#cap-add")
            await pilot.press("ctrl+r", "ctrl+s", "f2")
            await pilot.pause()
            waits = [n.message for n in app._notifications if n.message.startswith("Wait until reading the captions")]
            assert len(waits) == 3, [n.message for n in app._notifications]  # Add tag, undo, save (F2: no image)
            assert not engine.done.is_set()

            engine.release.set()
            await until(pilot, lambda: screen.job is None)
            await settle(pilot)
            listed = screen.query_one("#cap-images", OptionList)
            shown = sorted(images.glob("*.png"))
            assert listed.option_count == len(shown) and listed.highlighted == 0
            assert screen.image == shown[0]
            assert screen.query_one("#cap-text", TextArea).text == captions[shown[0].with_suffix(".txt")].strip()
            assert not screen.query_one("#cap-text", TextArea).read_only
            assert str(screen.query_one("#cap-tags", Static).render()).startswith("Tags: ")
            assert {p: p.read_text(encoding="utf-8") for p in images.glob("*.txt")} == captions  # nothing written
    finally:
        engine.release.set()


async def test_leaving_while_the_captions_are_read_goes_back_at_once_and_raises_nothing(tmp_path: Path,
                                                                                       demo_data: Path) -> None:
    images = _images(tmp_path, demo_data)
    engine = HeldEngine()
    app = make_app(engine, Session.for_demo(), image_renderer="none")
    try:
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            before = app.screen
            screen = await _held_screen(app, pilot, images)
            await pilot.press("escape")
            await pilot.pause()
            assert app.screen is before and not screen.is_attached
            assert not engine.done.is_set(), "Esc waited for the captions to be read"

            engine.release.set()  # the worker ends after its screen: what it posts has nowhere to go
            await until(pilot, engine.done.is_set)
            await settle(pilot)
            assert app.is_running and app.screen is before
            assert not [n for n in app._notifications if n.severity == "error"]
    finally:
        engine.release.set()
