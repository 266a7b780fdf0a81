"""The Model step's Flux parts (components, VAE, CLIP-L and T5 files) are used by its Convert alone: the profile names
the transformer file, which a run converts with the file's own hub repository. Next with parts typed and not converted
dropped them unsaid, and Parameters then said black-forest-labs/FLUX.1-dev was missing (offline) or the run fetched it."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input

from test_model_import import FluxConvertingEngine, _checked, _convert, _file, _type, conversions  # noqa: F401 - a fixture
from test_wizard_sdxl import check_model
from wizard_steps import settle


async def _next(pilot) -> None:
    await pilot.press("ctrl+n")
    await settle(pilot)


@pytest.mark.parametrize("field", ["#model-components", "#model-vae", "#model-clip-l", "#model-t5"])
async def test_next_says_flux_parts_typed_and_not_converted_and_stays(field: str, conversions: list[Path]) -> None:
    source = _file(Path("a"))
    async with _checked(FluxConvertingEngine(), source) as pilot:
        app, screen = pilot.app, pilot.app.screen
        await _type(pilot, field, "/models/flux-parts")
        await _next(pilot)
        assert app.screen is screen
        said = [str(n.message) for n in app._notifications]
        assert any("used only by the Convert to diffusers button" in message for message in said), said

        await _convert(pilot)  # converted with them: the profile names the folder made from them
        assert app.session.get("model.pretrained") == "models/m-diffusers"
        await _next(pilot)
        assert type(app.screen).__name__ == "DatasetScreen"


async def test_next_goes_on_for_a_flux_file_with_no_parts_typed(conversions: list[Path]) -> None:
    source = _file(Path("a"))
    async with _checked(FluxConvertingEngine(), source) as pilot:
        await _type(pilot, "#model-components", "black-forest-labs/FLUX.1-dev")
        await _type(pilot, "#model-components", "")  # typed and emptied: the file's own parts, as the run takes them
        await _next(pilot)
        assert type(pilot.app.screen).__name__ == "DatasetScreen"
        assert pilot.app.session.get("model.pretrained") == source


async def test_next_names_the_button_that_uses_a_conversion_made_from_the_parts_typed(conversions: list[Path]) -> None:
    """The file converted with its parts, then checked again: the step offers "Use this conversion", and Next said to
    press "Convert to diffusers", a button it no longer showed."""
    source = _file(Path("a"))
    async with _checked(FluxConvertingEngine(), source) as pilot:
        app, screen = pilot.app, pilot.app.screen
        await _type(pilot, "#model-vae", "/models/ae.safetensors")
        await _convert(pilot)
        screen.query_one("#model-source", Input).focus()
        await check_model(pilot, source)
        await _next(pilot)
        assert app.screen is screen
        said = [str(n.message) for n in app._notifications][-1]
        assert "used only by the Use this conversion button" in said, said
