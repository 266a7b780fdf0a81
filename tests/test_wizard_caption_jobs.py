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
