"""The Model step's Convert while another terminal converts the same file into the same folder: the wizard waits on
that conversion's lock (engine/models/conversion_lock.py), then uses its folder."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Button, Static

from dbtui.app import make_app
from dbtui.session import Session
from engine.models.conversion_note import conversion_source, note_conversion
from fake_conversion import copy_converted
from test_model_import import ConvertingEngine, conversions  # noqa: F401  (conversions: the fixture)
from test_wizard_sdxl import SIZE, at_a_new_profiles_model_step, check_model, visible
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


def _file(name: str = "a") -> Path:
    Path(name).mkdir()
    (Path(name) / "m.safetensors").write_bytes(name.encode())
    return Path(name) / "m.safetensors"


def _shown(pilot: Pilot, selector: str) -> str:
    return " ".join(str(pilot.app.screen.query_one(selector, Static).render()).split())


def _said(pilot: Pilot) -> list[str]:
    return [notification.message for notification in pilot.app._notifications]


@asynccontextmanager
async def _waiting(source: Path) -> AsyncIterator[Pilot]:
    """A new profile's Model step, ``source`` checked and Convert pressed: it waits for the other conversion."""
    app = make_app(ConvertingEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await at_a_new_profiles_model_step(pilot)
        await check_model(pilot, str(source))
        assert app.screen.query_one("#model-convert-to").value == "models/m-diffusers"
        app.screen.query_one("#model-convert", Button).press()
        await until(pilot, lambda: "under way" in _shown(pilot, "#model-warning"))
        yield pilot


async def test_a_conversion_that_waited_for_another_says_it_uses_that_ones_folder(
        other: Other, conversions: list[Path], tiny_sd1: Path) -> None:
    """It said "Converted into models/m-diffusers": the other terminal had converted it, this one converted nothing."""
    source = _file()
    async with _waiting(source) as pilot:
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
    async with _waiting(source) as pilot:
        if ending == "converted there":
            other.finish(tiny_sd1, source)
        else:  # that terminal's conversion stopped with Ctrl-C: this one converts
            other.process.kill()
        await until(pilot, lambda: pilot.app.session.get("model.pretrained") == "models/m-diffusers")
        await settle(pilot)
        assert conversions == ([] if ending == "converted there" else [source])
        assert "under way" not in _shown(pilot, "#model-warning")
        assert not visible(pilot.app.screen, "#model-warning")
