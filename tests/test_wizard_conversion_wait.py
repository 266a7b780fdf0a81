"""The Model step's Convert while another terminal converts the same file into the same folder: the wizard waits on
that conversion's lock (engine/models/conversion_lock.py), then uses its folder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Button, ProgressBar, Static

from dbtui.app import make_app
from dbtui.session import Session
from engine.models.conversion_note import conversion_source, note_conversion
from fake_conversion import copy_converted
from test_model_import import ConvertingEngine, check_model, conversions  # noqa: F401  (conversions: the fixture)
from test_wizard_sdxl import SIZE, at_a_new_profiles_model_step, visible
from wizard_steps import settle, until

HOLD = """import sys
from pathlib import Path
from engine.models.conversion_lock import converting_into
with converting_into(Path(sys.argv[1])):
    print("held", flush=True)
    sys.stdin.readline()
"""


class Other:
    """Another terminal's conversion of a file into ``folder``: a process holding its lock until ``finish``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
        self.process = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, env=env)
        assert self.process.stdout is not None and self.process.stdout.readline() == b"held\n"

    def finish(self, tiny_sd1: Path, source: Path) -> None:
        """Its folder written, as that conversion writes it (with its note), and the lock let go."""
        copy_converted(tiny_sd1, self.folder, lambda made: note_conversion(made, conversion_source(source),
                                                                            {"flux_parts": None}))
        assert self.process.stdin is not None
        self.process.stdin.write(b"done\n")
        self.process.stdin.flush()
        assert self.process.wait(30) == 0


@pytest.fixture
def other(conversions: list[Path], tmp_path: Path) -> Iterator[Other]:
    """m.safetensors's conversion into models/m-diffusers, under way in another terminal."""
    held = Other(tmp_path / "models" / "m-diffusers")
    try:
        yield held
    finally:
        held.process.kill()
        held.process.wait()


def _file(folder: str = "a", name: str = "m") -> Path:
    Path(folder).mkdir()
    (Path(folder) / f"{name}.safetensors").write_bytes(folder.encode())
    return Path(folder) / f"{name}.safetensors"


def _shown(pilot: Pilot, selector: str) -> str:
    return " ".join(str(pilot.app.screen.query_one(selector, Static).render()).split())


def _said(pilot: Pilot) -> list[str]:
    return [notification.message for notification in pilot.app._notifications]


async def _convert(pilot: Pilot, source: Path) -> None:
    """``source`` checked and Convert pressed, into the folder suggested."""
    await check_model(pilot, str(source))
    screen = pilot.app.screen
    assert screen.query_one("#model-convert-to").value == f"models/{source.stem}-diffusers"
    screen.query_one("#model-convert", Button).press()


@asynccontextmanager
async def _waiting(other: Other, source: Path, *before: Path) -> AsyncIterator[Pilot]:
    """A new profile's Model step, the files ``before`` converted, then ``source`` checked and Convert pressed: it
    waits for the other conversion, which ends with the test at the latest (the app, closing, waits for this one)."""
    app = make_app(ConvertingEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await at_a_new_profiles_model_step(pilot)
        for converted in before:
            await _convert(pilot, converted)
            await settle(pilot)
            app.screen.query_one("#model-source").focus()
        await _convert(pilot, source)
        try:
            await until(pilot, lambda: "under way" in _shown(pilot, "#model-warning"))
            yield pilot
        finally:
            other.process.kill()


async def test_a_conversion_that_waited_for_another_says_it_uses_that_ones_folder(
        other: Other, conversions: list[Path], tiny_sd1: Path) -> None:
    """It said "Converted into models/m-diffusers": the other terminal had converted it, this one converted nothing."""
    source = _file()
    async with _waiting(other, source) as pilot:
        other.finish(tiny_sd1, source)
        await until(pilot, lambda: pilot.app.session.get("model.pretrained") == "models/m-diffusers")
        await settle(pilot)
        assert conversions == []
        assert "Using models/m-diffusers, which holds this file's conversion" in _said(pilot)
        assert not any(said.startswith("Converted") for said in _said(pilot))


@pytest.mark.parametrize("ending", ["converted there", "ended without it"])
async def test_the_notice_that_it_waits_goes_once_the_wait_ends(ending: str, other: Other, conversions: list[Path],
                                                                tiny_sd1: Path) -> None:
    """"another conversion into models/m-diffusers is under way … waits for it" stayed under the model converted (or
    used) since, as if it still waited."""
    source = _file()
    async with _waiting(other, source) as pilot:
        if ending == "converted there":
            other.finish(tiny_sd1, source)
        else:  # that terminal's conversion stopped with Ctrl-C: this one converts
            other.process.kill()
        await until(pilot, lambda: pilot.app.session.get("model.pretrained") == "models/m-diffusers")
        await settle(pilot)
        assert conversions == ([] if ending == "converted there" else [source])
        assert "under way" not in _shown(pilot, "#model-warning")
        assert not visible(pilot.app.screen, "#model-warning")


async def test_a_second_conversion_waiting_does_not_show_the_first_ones_bar_full(other: Other,
                                                                                 conversions: list[Path]) -> None:
    """The bar showed the conversion before's 100 % while this one waited: it was set back only by the conversion's
    first PhaseStarted, which a wait for another terminal puts off for minutes."""
    first, source = _file("b", "n"), _file()
    async with _waiting(other, source, first) as pilot:
        assert conversions == [first]
        bar = pilot.app.screen.query_one("#model-progress", ProgressBar)
        assert visible(pilot.app.screen, "#model-progress") and bar.percentage is None  # working, not done


async def test_convert_stays_disabled_while_its_file_converts_however_often_it_is_checked(
        other: Other, conversions: list[Path], tiny_sd1: Path) -> None:
    """Enter again in the Model field (or a check run again) enabled Convert over the file still converting: a second
    press started a second conversion of it into the same folder, and the first one's end hid the second's bar."""
    source = _file()
    async with _waiting(other, source) as pilot:
        app, screen = pilot.app, pilot.app.screen
        screen.query_one("#model-source").focus()
        await pilot.press("enter")
        await until(pilot, lambda: app.session.model_info.source == str(source) and visible(screen, "#model-convert"))
        await pilot.pause()
        assert screen.query_one("#model-convert", Button).disabled and visible(screen, "#model-progress")
        await pilot.click("#model-convert")
        other.finish(tiny_sd1, source)
        await until(pilot, lambda: app.session.get("model.pretrained") == "models/m-diffusers")
        await settle(pilot)
        assert len(app.conversions) == 1 and conversions == []


@pytest.mark.parametrize("stopped", ["before Convert", "while it waits"])
async def test_a_wait_for_a_stopped_conversion_ends_saying_what_to_do(stopped: str, other: Other,
                                                                      conversions: list[Path]) -> None:
    """The other terminal's conversion suspended with Ctrl-Z: the step's Convert ends its wait, and says to continue
    that process or end it; Convert can be pressed again once it has."""
    source = _file()
    app = make_app(ConvertingEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        try:
            await at_a_new_profiles_model_step(pilot)
            if stopped == "before Convert":
                os.kill(other.process.pid, signal.SIGSTOP)
            await _convert(pilot, source)
            if stopped == "while it waits":
                await until(pilot, lambda: "under way" in _shown(pilot, "#model-warning"))
                os.kill(other.process.pid, signal.SIGSTOP)
            await until(pilot, lambda: "✗" in _shown(pilot, "#model-family"))
            await settle(pilot)
        finally:
            os.kill(other.process.pid, signal.SIGCONT)
        screen = app.screen
        said = _shown(pilot, "#model-family")
        # The process, what it runs, and that it is stopped.
        assert f"held by process {other.process.pid}, `" in said and ", which is stopped" in said
        assert f"kill -CONT {other.process.pid}" in said and "Traceback" not in said
        assert not visible(screen, "#model-warning") and not visible(screen, "#model-progress")
        assert not screen.query_one("#model-convert", Button).disabled and conversions == []
        assert app.session.get("model.pretrained") == str(source)
