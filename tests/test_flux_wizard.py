"""Flux in the wizard: the parameters screen hides what Flux refuses and sets it aside, offers the
base-weights choice and the Flux presets only for a Flux model, the hardware advice per card, and
a tiny-Flux LoRA on an NF4 base trained by keyboard on the real engine (fit test included)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from textual.widgets import Select

from dbtui.app import make_app
from dbtui.engine_facade import RealEngine
from dbtui.session import Session
from dbtui.widgets.vram_line import VramLine
from engine.runs.folder import RunFolder
from test_wizard_sdxl import SIZE, check_model, settle, text_of, through_the_dataset_step, until, visible
from wizard_fakes import FakeEngine
from wizard_steps import vram_estimated

FLUX_REFUSES = {"training.clip_skip": 2, "training.min_snr_gamma": 5.0, "training.train_text_encoder": True,
                "training.text_encoder_stop_fraction": 0.5}


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


async def open_parameters(pilot, session: Session) -> None:
    app = pilot.app
    app._started(session)
    await settle(pilot)
    app.goto(3)
    await settle(pilot)
    app.screen.query_one("#sec-training").collapsed = False  # advanced rows are built when opened
    await settle(pilot, 0.3)


def sd_draft_flux_refuses() -> Session:
    """The demo (a full fine-tune) of the tiny SD1, with every setting Flux refuses for it switched on."""
    session = Session.for_demo()
    session.set("training.method", "full")
    for key, value in FLUX_REFUSES.items():
        session.set(key, value)
    session.adopt_model(FakeEngine().inspect_model("builtin:tiny-sd1"))
    return session


def flux_draft(engine: FakeEngine) -> Session:
    session = Session.for_demo()
    session.set("model.pretrained", "models/flux")
    session.adopt_model(engine.inspect_model("models/flux"))
    return session


async def test_a_flux_model_sets_aside_what_flux_refuses_and_an_sd_model_gets_it_back() -> None:
    from engine.models.flux import Flux

    app = make_app(FakeEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await open_parameters(pilot, sd_draft_flux_refuses())
        assert visible(app.screen, "#row-f-training--clip_skip") and not visible(app.screen, "#sec-training--flow")
        app.goto(1)
        await settle(pilot)
        await check_model(pilot, "models/flux")
        session = app.session
        assert session.family_id == "flux"
        assert all(session.get(key) is None for key in FLUX_REFUSES)
        app.goto(3)
        await settle(pilot)
        screen = app.screen
        screen.query_one("#sec-training").collapsed = False
        await settle(pilot, 0.3)
        for key in FLUX_REFUSES:
            assert not visible(screen, f"#row-f-{key.replace('.', '--')}"), key
        assert visible(screen, "#sec-training--flow")
        assert "valid" in text_of(screen, "#par-problems")
        Flux().check_profile(session.profile())  # the trainer's own check passes

        app.goto(1)
        await settle(pilot)
        await check_model(pilot, "builtin:tiny-sd1")
        assert {key: session.get(key) for key in FLUX_REFUSES} == FLUX_REFUSES


def test_a_flux_lora_may_train_clip_l_and_a_full_fine_tune_sets_the_switch_aside() -> None:
    from dbtui.family_help import field_help
    from dbtui.field_rules import applies, settle as settle_rules
    from engine.models.flux import Flux

    def method(session: Session, value: str) -> None:
        session.set("training.method", value)
        settle_rules(session, ["training.method"])

    session = flux_draft(FakeEngine())
    method(session, "lora")
    assert applies(session, "training.train_text_encoder")
    session.set("training.train_text_encoder", True)
    Flux().check_profile(session.profile())  # CLIP-L's LoRA trains beside the transformer's
    method(session, "full")
    assert not applies(session, "training.train_text_encoder") and session.get("training.train_text_encoder") is None
    Flux().check_profile(session.profile())
    method(session, "lora")
    assert session.get("training.train_text_encoder") is True
    assert "CLIP-L" in field_help("training.train_text_encoder", "the SD wording", "flux")


async def test_the_base_weights_choice_is_a_flux_loras_and_the_meter_is_asked_with_it() -> None:
    engine = FakeEngine()
    app = make_app(engine, Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await open_parameters(pilot, sd_draft_flux_refuses())
        assert not visible(app.screen, "#par-quantize-row")  # an SD model: not offered

        session = flux_draft(engine)
        session.set("training.method", "lora")
        await open_parameters(pilot, session)
        screen = app.screen
        screen.query_one(VramLine).delay = 0.1
        assert visible(screen, "#par-quantize-row")
        async with vram_estimated(pilot):  # the VRAM line waits a moment after the last change
            screen.query_one("#par-quantize", Select).value = "nf4"
        await settle(pilot)
        assert session.get("model.quantize") == "nf4"
        assert engine.estimated[-1].model.quantize == "nf4"

        screen.query_one("#f-training--method", Select).value = "full"  # a quantized base takes no full fine-tune
        await settle(pilot)
        assert not visible(screen, "#par-quantize-row") and session.get("model.quantize") is None
        assert "valid" in text_of(screen, "#par-problems")
        screen.query_one("#f-training--method", Select).value = "lora"
        await settle(pilot)
        assert visible(screen, "#par-quantize-row") and session.get("model.quantize") == "nf4"
        assert screen.query_one("#par-quantize", Select).value == "nf4"


async def test_flux_presets_are_offered_for_flux_models_only() -> None:
    engine = FakeEngine()
    app = make_app(engine, Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await open_parameters(pilot, sd_draft_flux_refuses())
        offered = {value for _, value in app.screen.query_one("#par-preset", Select)._options}
        assert "lora" in offered and not any(str(name).startswith("flux") for name in offered)

        session = flux_draft(engine)
        await open_parameters(pilot, session)
        screen = app.screen
        offered = {value for _, value in screen.query_one("#par-preset", Select)._options}
        assert {"flux-lora-16gb", "flux-lora-24gb", "person"} <= offered and "lora" not in offered
        screen.query_one("#par-preset", Select).value = "flux-lora-16gb"
        screen.query_one("#par-apply").press()
        await settle(pilot)
        assert (session.get("model.quantize"), session.get("training.method"), session.get("dataset.resolution")) == ("nf4", "lora", 512)
        assert screen.query_one("#par-quantize", Select).value == "nf4" and visible(screen, "#par-quantize-row")
        assert "valid" in text_of(screen, "#par-problems")


def test_the_shipped_flux_profiles_are_valid_flux_loras_on_an_nf4_base() -> None:
    from engine.models.flux import Flux
    from engine.profile import load_profile

    root = Path(__file__).resolve().parents[1] / "profiles"
    for name, resolution in (("flux-lora-16gb.toml", 512), ("flux-lora-24gb.toml", 1024)):
        profile = load_profile(root / name)
        Flux().check_profile(profile)
        assert (profile.model.pretrained, profile.model.quantize) == ("black-forest-labs/FLUX.1-dev", "nf4")
        assert (profile.training.method, profile.dataset.resolution, profile.precision.mixed_precision) == ("lora", resolution, "bf16")


@pytest.mark.parametrize("bf16", [True, False], ids=["bf16", "no-bf16"])
def test_the_flux_advice_recommends_what_the_meter_says_fits(bf16: bool) -> None:
    from engine.hardware.machine import Gpu, Hardware, verdict
    from engine.memory.preset_table import load_preset_estimates

    table = load_preset_estimates()
    advised = {}
    for card in (8, 12, 16, 24, 40, 80):
        sentence, preset = verdict(Hardware(gpus=[Gpu(0, "GPU", card * 1024 - 10, None, "8.6", bf16)]), "flux")
        advised[card] = preset
        fits = table[preset].need(bf16).run_need <= card * 2**30  # the caching pass with T5-XXL included
        assert fits == ("too little" not in sentence), (card, sentence)
    assert advised[80] == "flux-lora-24gb" and advised[8] == "flux-lora-16gb"
    sentence, preset = verdict(Hardware(gpus=[]), "flux")
    assert preset == "cpu-demo" and "No NVIDIA GPU" in sentence


def test_flux_models_get_flux_advice_by_name() -> None:
    from engine.model_info import likely_family

    assert likely_family("black-forest-labs/FLUX.1-dev") == "flux"
    assert likely_family("models/flux1-dev-fp8.safetensors") == "flux"
    assert likely_family("stabilityai/stable-diffusion-xl-base-1.0") == "sdxl"


# -- a real tiny-Flux LoRA on an NF4 base, by keyboard ----------------------------------------

@pytest.mark.slow
async def test_the_wizard_trains_a_tiny_flux_lora_on_an_nf4_base_by_keyboard(tiny_sd1, demo_data) -> None:
    app = make_app(RealEngine(), Session(), image_renderer="halfcell")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("d")  # the demo: its images, prompts and CPU settings
        await until(pilot, lambda: app.session.hardware is not None, 120, "the hardware probe")
        # No scoring rounds and one small preview: a short run. Flux's previews are tested by tests/test_flux.py's LoRA
        # runs, scoring on its own (tests/test_evaluation.py).
        app.session.set("evaluation.enabled", False)
        app.session.set("sampling.num_images", 1)
        app.session.set("sampling.steps", 2)

        await pilot.press("ctrl+n")
        await until(pilot, lambda: app.session.model_info is not None, 60, "the demo model's check")
        await pilot.press("end", "ctrl+u", *"builtin:tiny-flux", "enter")
        await until(pilot, lambda: app.session.family_id == "flux", 120, "the tiny Flux's check")
        assert "✓ built-in tiny Flux.1" in text_of(app.screen, "#model-family")

        params = await through_the_dataset_step(pilot)
        assert not visible(params, "#par-quantize-row")  # the demo is a full fine-tune
        await pilot.press("tab", "enter", "down", "enter")  # from the run name to the method: lora
        await pilot.pause()
        assert app.session.get("training.method") == "lora" and visible(params, "#par-quantize-row")
        await pilot.press("tab", "end", "ctrl+u", "3")  # the number of steps
        await pilot.press(*["shift+tab"] * 6, "enter", "down", "enter")  # back up to the base weights: nf4
        await pilot.pause()
        assert (app.session.get("training.max_train_steps"), app.session.get("model.quantize")) == (3, "nf4")
        assert "valid" in text_of(params, "#par-problems")

        await pilot.press("ctrl+f")  # the fit test, on the NF4 base
        await until(pilot, lambda: "Fit test:" in text_of(params, "#par-fit-status")
                    or "failed" in text_of(params, "#par-fit-status"), 240, "the fit test")
        assert "s/step" in text_of(params, "#par-fit-status"), text_of(params, "#par-fit-status")

        await pilot.press("ctrl+n")  # train: a detached trainer process, followed by the dashboard
        dashboard = app.screen
        await until(pilot, lambda: getattr(dashboard, "finished", False), 240, "the run to finish")
        assert dashboard.query_one("#tr-stats").status == "finished"
        assert len(dashboard.history) == 3
        run = RunFolder(app.session.run_folder)
        assert 'quantize = "nf4"' in run.profile.read_text(encoding="utf-8")
        index = run.outputs / "diffusers" / "model_index.json"  # the demo exports the LoRA fused into the base
        assert json.loads(index.read_text(encoding="utf-8"))["_class_name"] == "FluxPipeline"


@pytest.mark.parametrize(("family", "card"), [("flux", 11), ("sd", 3.65), ("sdxl", 7.6)])
def test_a_card_told_it_is_too_small_is_told_a_need_above_its_size(family: str, card: float) -> None:
    """`dbtui hardware --family flux --card 11` (an RTX 2080 Ti's or 1080 Ti's size) said "too little even for a LoRA
    on an NF4 base at 512 px, which needs about 11 GB": the LoRA needs 11.03 GB, rounded to the card's own size."""
    import re

    from engine.hardware.machine import card_verdict

    sentence, _ = card_verdict(card, family)
    said = re.search(r"too little even for a LoRA.*?, which needs (?:about )?([0-9.]+) GB", sentence)
    assert said is not None and float(said.group(1)) > card, sentence


def test_the_half_precision_save_speaks_of_flux_s_transformer() -> None:
    """saving.unet_half's help said "Save the trained UNet" of a Flux model, whose denoiser is a transformer."""
    from dbtui.family_help import field_help
    from engine.profile.schema import SavingSection

    sd_words = SavingSection.model_fields["unet_half"].description
    assert "UNet" in field_help("saving.unet_half", sd_words, "sd")
    flux_words = field_help("saving.unet_half", sd_words, "flux")
    assert "transformer" in flux_words and "UNet" not in flux_words, flux_words
