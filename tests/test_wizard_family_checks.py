"""The parameters step checks a draft as the run will: what the model's family refuses is a problem there (no save,
no Train), what it only warns of is a line under the problems, and help quoting Flux.1 [dev] shows its brackets."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input

from dbtui.app import make_app
from dbtui.session import Session
from engine.profile import ProfileError
from test_flux_wizard import flux_draft, open_parameters
from test_wizard_sdxl import SIZE, help_of, settle, text_of
from wizard_fakes import FakeEngine


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize(("key", "value"), [("dataset.resolution", 72), ("saving.export", ["safetensors"])])
def test_what_flux_refuses_is_a_problem_of_the_draft_and_it_is_not_saved(key: str, value, tmp_path: Path) -> None:
    session = flux_draft(FakeEngine())
    session.set(key, value)
    profile, problems = session.validate()
    assert profile is None and [p.key for p in problems] == [key]
    with pytest.raises(ProfileError):
        session.save(tmp_path / "flux.toml")
    assert not (tmp_path / "flux.toml").exists()


def test_an_sd_draft_keeps_what_only_flux_refuses() -> None:
    session = Session.for_demo()
    session.adopt_model(FakeEngine().inspect_model("builtin:tiny-sd1"))
    session.set("saving.export", ["safetensors"])
    assert session.validate()[1] == []


async def test_the_panel_says_a_flux_refusal_and_a_flux_warning_without_blocking_on_the_warning() -> None:
    app = make_app(FakeEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        session = flux_draft(FakeEngine())
        session.set("sampling.negative_prompt", "blurry")
        await open_parameters(pilot, session)
        screen = app.screen
        panel = text_of(screen, "#par-problems")
        assert "✓ The profile is valid." in panel and "⚠ sampling.negative_prompt: Flux takes no negative prompt" in panel
        screen.query_one("#f-dataset--resolution", Input).value = "72"
        await settle(pilot, 0.3)
        panel = text_of(screen, "#par-problems")
        assert "✗ dataset.resolution: 72 is not a multiple of 16" in panel and "valid" not in panel
        assert screen.query_one("#row-f-dataset--resolution").has_class("-invalid")
        screen.query_one("#par-path", Input).value = "flux.toml"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert not Path("flux.toml").exists()
        await pilot.press("ctrl+n")  # Train
        await settle(pilot)
        assert type(app.screen).__name__ == "ParametersScreen"


async def test_help_quoting_flux_1_dev_keeps_its_brackets() -> None:
    """Rich read "[dev]" as a style tag: the help said "Flux.1 's previews"."""
    app = make_app(FakeEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await open_parameters(pilot, flux_draft(FakeEngine()))
        screen = app.screen
        for section in ("#sec-sampling", "#sec-training--flow"):
            screen.query_one(section).collapsed = False
        await settle(pilot, 0.3)
        assert "Flux.1 [dev]'s previews" in help_of(screen, "sampling.guidance_scale")
        assert "([schnell])" in help_of(screen, "training.flow.guidance")
