"""The start screen and the Model step name the families dbtui trains as the README does: they spoke of Stable
Diffusion alone, and an SDXL or Flux user read that their model was not for this tool."""

from __future__ import annotations

from pathlib import Path

import pytest

from dbtui.app import make_app
from dbtui.screens.model import ModelScreen
from dbtui.session import Session
from test_wizard_sdxl import SIZE, at_a_new_profiles_model_step
from wizard_fakes import FakeEngine
from wizard_steps import settle

FAMILIES = ("SD1.x", "SD2.x", "SDXL", "Flux.1")
README = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def shown(app) -> str:
    return " ".join(" ".join(strip.text.split()) for strip in app.screen._compositor.render_strips())


async def test_the_start_screen_and_the_model_step_name_every_family_as_the_readme_does() -> None:
    assert "names the family it found (SD1.x, SD2.x, SDXL, Flux.1;" in README  # the README's own names
    app = make_app(FakeEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        start = shown(app)
        await at_a_new_profiles_model_step(pilot)
        model = shown(app)
    for family in FAMILIES:
        assert family in start, start
        assert family in model, model
        assert family in ModelScreen.HELP
    assert "Stable Diffusion" not in start + ModelScreen.HELP
