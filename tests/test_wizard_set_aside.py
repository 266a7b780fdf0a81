"""What the wizard sets aside: only what the model's family or the method cannot take, and never without a word (a
value that leaves the draft unseen is missing from the saved profile and from the run)."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Select

from dbtui.app import make_app
from dbtui.session import Session
from engine.profile import load_profile
from test_flux_wizard import FLUX_REFUSES, open_parameters, sd_draft_flux_refuses
from test_wizard_sdxl import SIZE, check_model, settle, text_of, visible
from wizard_fakes import FakeEngine


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def _set_aside_notes(app) -> list[str]:
    return [n.message for n in app._notifications if n.title == "Set aside"]


async def test_an_sdxl_lora_keeps_its_fp8_base_shown_and_saved(tmp_path: Path) -> None:
    """Any family takes a quantized base (README): Parameters moved an SDXL LoRA's quantize = "fp8" aside, silently."""
    engine = FakeEngine()
    session = Session.for_demo()
    session.set("model.pretrained", "models/sdxl-base")
    session.set("training.method", "lora")
    session.set("model.quantize", "fp8")
    session.adopt_model(engine.inspect_model("models/sdxl-base"))
    app = make_app(engine, Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await open_parameters(pilot, session)
        screen = app.screen
        assert app.session.get("model.quantize") == "fp8" and not app.session.aside
        assert visible(screen, "#par-quantize-row") and screen.query_one("#par-quantize", Select).value == "fp8"
        assert load_profile(app.session.save(tmp_path / "p.toml")).model.quantize == "fp8"
        assert _set_aside_notes(app) == []


async def test_a_family_that_refuses_settings_says_which_it_set_aside() -> None:
    app = make_app(FakeEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        session = sd_draft_flux_refuses()
        session.step = 1  # its Model step, where the family changes: the steps before it change nothing in the draft
        app._started(session)
        await settle(pilot)
        await check_model(pilot, "models/flux")
        [note] = _set_aside_notes(app)
        for key, value in FLUX_REFUSES.items():
            assert f"{key} = {value!r}" in note


async def test_switching_to_a_full_fine_tune_says_the_lora_options_are_set_aside() -> None:
    session = Session.for_demo()
    session.set("training.method", "lora")
    session.set("training.lora.rank", 16)
    app = make_app(FakeEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await open_parameters(pilot, session)
        app.screen.query_one("#f-training--method", Select).value = "full"
        await settle(pilot)
        assert app.session.aside == {"training.lora": {"rank": 16}}
        [note] = _set_aside_notes(app)
        assert "training.lora" in note


async def test_a_flux_model_sets_aside_the_single_file_export_of_an_sdxl_preset_and_sdxl_gets_it_back() -> None:
    """saving.export = ["diffusers", "safetensors"] (sdxl-full) stayed under a Flux model, which refuses "safetensors":
    Parameters said "✗ saving.export: lists safetensors …" and nothing could be saved or trained until it was edited."""
    engine = FakeEngine()
    session = Session.for_demo()
    session.set("model.pretrained", "models/sdxl-base")
    session.adopt_model(engine.inspect_model("models/sdxl-base"))
    app = make_app(engine, Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await open_parameters(pilot, session)
        app.screen.query_one("#par-preset", Select).value = "sdxl-full"
        app.screen.query_one("#par-apply").press()
        await settle(pilot)
        assert app.session.get("saving.export") == ["diffusers", "safetensors"]
        app.goto(1)
        await settle(pilot)
        await check_model(pilot, "models/flux")
        app.goto(3)
        await settle(pilot, 0.3)
        assert app.session.get("saving.export") == ["diffusers"]
        assert "valid" in text_of(app.screen, "#par-problems") and "saving.export" not in text_of(app.screen, "#par-problems")
        assert "'safetensors' of saving.export" in _set_aside_notes(app)[-1]

        app.goto(1)
        await settle(pilot)
        await check_model(pilot, "models/sdxl-base")
        assert app.session.get("saving.export") == ["diffusers", "safetensors"] and "saving.export" not in app.session.aside
