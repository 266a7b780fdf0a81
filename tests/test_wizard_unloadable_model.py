"""A model that cannot load (a damaged file, a folder missing a part) as the wizard's Hardware and Parameters steps
advise for it: no preset, as `dbtui hardware --profile` refuses it, and validate's words for why."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from textual.widgets import Input, Select

from dbtui.engine_facade import RealEngine
from tests.test_meter_ui import text_of
from wizard_fakes import HeldProbe
from wizard_steps import held_probe_wizard, parameters_from_an_attached_run, settle, until

NO_PRESET = "No preset is advised: the model cannot load"


@pytest.fixture(params=["damaged file", "folder without unet"])
def unloadable(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch) -> tuple[Path, str]:
    """(the model that cannot load, what `dbtui validate` says of it)."""
    from engine.model_problems import model_load_problems
    from engine.profile.schema import ModelSection

    monkeypatch.chdir(tmp_path)
    if request.param == "damaged file":
        model = tmp_path / "broken.safetensors"
        model.write_bytes(bytes(range(256)) * 16)
    else:
        model = tmp_path / "model"
        shutil.copytree(request.getfixturevalue("tiny_sd1"), model, ignore=shutil.ignore_patterns("unet"))
    said = model_load_problems(ModelSection(pretrained=str(model)))
    assert len(said) == 1
    return model, said[0].message


def _checked_for_real(engine: HeldProbe) -> HeldProbe:
    """The fake engine, but for the Model step's check, which is the engine's own."""
    engine.inspect_model = lambda source, **parts: RealEngine().inspect_model(source, **parts)
    engine.answer.set()
    return engine


async def test_back_on_the_hardware_step_a_model_that_cannot_load_is_advised_no_preset(unloadable) -> None:
    """Back from the Model step, which said ✗ for broken.safetensors (or a folder without unet/), the Hardware step
    still recommended a T4 preset: SD1.x's, "once the model step has checked yours, Parameters recommends for it"
    (which it had checked), or SD1.x's as the folder's own. It now says, as `dbtui hardware --profile` does, that none
    is advised, with validate's words."""
    model, said = unloadable
    async with held_probe_wizard(_checked_for_real(HeldProbe())) as pilot:
        app = pilot.app
        await pilot.press("n")
        await until(pilot, lambda: app.session.hardware is not None)
        await pilot.press("ctrl+n")
        await settle(pilot)
        assert type(app.screen).__name__ == "ModelScreen"
        app.screen.query_one("#model-source", Input).value = str(model)
        await pilot.press("enter")
        await settle(pilot)
        assert text_of(app.screen, "#model-family").startswith("✗")
        await pilot.press("escape")
        await settle(pilot)
        assert type(app.screen).__name__ == "HardwareScreen"
        shown = " ".join(text_of(app.screen, "#hw-verdict").split())
        assert shown.startswith(NO_PRESET) and " ".join(said.split()) in shown, shown
        assert "Recommended preset" not in shown, shown


async def test_parameters_offers_no_preset_for_a_model_that_cannot_load(unloadable) -> None:
    """Esc from an attached run whose model has since been damaged: Parameters pre-selected the T4's preset for it (by
    SD1.x's figures) beside the problem that says it cannot load. It now selects none and says why."""
    model, said = unloadable
    engine = _checked_for_real(HeldProbe())
    async with held_probe_wizard(engine) as pilot:
        app = pilot.app
        await parameters_from_an_attached_run(pilot, model__pretrained=str(model))
        await until(pilot, lambda: type(app.screen).__name__ == "ParametersScreen" and app.session.hardware is not None)
        await settle(pilot)
        assert app.screen.query_one("#par-preset", Select).value is Select.NULL
        assert text_of(app.screen, "#par-no-preset").startswith(NO_PRESET)
        assert " ".join(said.split()) in " ".join(text_of(app.screen, "#par-problems").split())
