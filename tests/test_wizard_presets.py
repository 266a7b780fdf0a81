"""The presets the parameters screen offers and pre-selects: the model family's own, for this machine."""

from __future__ import annotations

import copy
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from textual.app import App
from textual.pilot import Pilot
from textual.widgets import Select

from dbtui.app import make_app
from dbtui.engine_facade import HardwareReport, ModelInfo
from dbtui.field_rules import controls_of, settle
from dbtui.presets import MODIFIERS, PRESETS, TIER_PRESETS, preset_label, preset_values, presets_for
from dbtui.session import Session
from engine.hardware.machine import Gpu, Hardware, verdict
from wizard_fakes import FakeEngine
from wizard_steps import at_step

SIZE = (80, 24)


def gpu_machine(gb: int) -> Hardware:
    return Hardware(gpus=[Gpu(0, "RTX", gb * 1024, gb * 1024, "8.9", True)])


class GpuEngine(FakeEngine):
    """The fake engine on a machine with one ``gb`` GB card, advised as the hardware step does (for SD1.5)."""

    def __init__(self, gb: int) -> None:
        super().__init__()
        self.machine = gpu_machine(gb)

    def probe_hardware(self, path: str) -> HardwareReport:
        return HardwareReport(self.machine, *verdict(self.machine))


def _drafted(engine: FakeEngine, session: Session, model: str | None) -> Session:
    """``session`` a draft of ``model`` (where one is given), ``engine``'s machine probed, as the start screen hands it on."""
    if model is not None:
        session.set("model.pretrained", model)
    session.hardware = engine.probe_hardware(".")
    if model is not None:
        session.adopt_model(engine.inspect_model(model))
    return session


@asynccontextmanager
async def started(engine: FakeEngine, session: Session,
                  model: str | None = None) -> AsyncIterator[tuple[App, Pilot]]:
    """The wizard of ``engine`` started on ``session`` (a draft of ``model`` where one is given), its hardware probed."""
    session = _drafted(engine, session, model)
    app = make_app(engine, Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        app._started(session)
        await pilot.pause(0.2)
        yield app, pilot


async def redrafted(app: App, pilot: Pilot, model: str | None, session: Session | None = None) -> None:
    """The started wizard on a new draft (``session``, else a new profile) of ``model`` at its hardware step, as
    started() begins one: a test that tries several drafts on one engine starts one app, not one for each."""
    app.session = _drafted(app.engine, session or Session(), model)
    await at_step(app, pilot, 0, "HardwareScreen")


async def preselected(app: App, pilot: Pilot) -> str | None:
    """The preset the parameters screen pre-selects for the app's draft, after the hardware step."""
    screen = await at_step(app, pilot, 3, "ParametersScreen")
    value = screen.query_one("#par-preset", Select).value
    return None if value is Select.NULL else value


async def test_the_preset_preselected_is_the_one_advised_for_the_models_family() -> None:
    engine = GpuEngine(24)
    async with started(engine, Session()) as (app, pilot):
        for gb, model, family in [(24, "models/sdxl-base", "sdxl"), (8, "models/sdxl-base", "sdxl"),
                                  (24, "models/flux", "flux"), (24, "models/sd21", "sd")]:
            engine.machine = gpu_machine(gb)  # the card of this draft's probe
            await redrafted(app, pilot, model)
            assert await preselected(app, pilot) == verdict(engine.machine, family, Session().trains_prior)[1], (gb, model)


# -- which presets, for which model ----------------------------------------------------------

def test_each_family_is_offered_its_own_tier_presets_and_the_demo_alone_cpu_demo() -> None:
    sd, sdxl, flux = (set(presets_for(family)) for family in ("sd", "sdxl", "flux"))
    assert sd == {"lora", "full-8bit", "full", "full-text-encoder", *MODIFIERS}
    assert sdxl == {"sdxl-lora", "sdxl-full", *MODIFIERS}
    assert flux == {"flux-lora-16gb", "flux-lora-24gb", *MODIFIERS}
    assert set(presets_for(None)) == sd | sdxl  # not checked yet: either
    assert set(presets_for("sd", demo=True)) == sd | {"cpu-demo"}
    assert all(any(name in offered for offered in (sd, sdxl, flux)) for name in TIER_PRESETS if name != "cpu-demo")



def test_every_lora_preset_exports_the_kohya_file_that_comfyui_and_the_webuis_load() -> None:
    loras = {name: preset for name, preset in PRESETS.items() if preset.get("training", {}).get("method") == "lora"}
    assert {"lora", "sdxl-lora", "flux-lora-16gb", "flux-lora-24gb"} <= set(loras)
    assert all(preset["saving"]["export"] == ["lora_diffusers", "lora_kohya"] for preset in loras.values())

async def test_without_a_gpu_a_real_model_gets_no_cpu_demo_preset_and_the_demo_does() -> None:
    engine = FakeEngine()  # no GPU: the advice says cpu-demo
    async with started(engine, Session(), "models/sd21") as (app, pilot):
        assert await preselected(app, pilot) is None
        await redrafted(app, pilot, None, Session.for_demo())
        assert await preselected(app, pilot) == "cpu-demo"


# -- one preset after another ----------------------------------------------------------------

def applied(session: Session, *names: str) -> Session:
    """``session`` with each preset applied in turn, as the parameters screen's Apply does."""
    for name in names:
        values = preset_values(session, name)
        session.merge(values)
        settle(session, controls_of(values))
    return session


def drafts() -> list[Session]:
    """A new profile (family not known yet), the demo, and a checked model of each family."""
    found = [Session(), Session.for_demo()]
    for model in ("models/sd21", "models/sdxl-base", "models/flux"):
        session = Session.for_demo()
        session.set("model.pretrained", model)
        session.adopt_model(FakeEngine().inspect_model(model))
        found.append(session)
    return found


def test_a_tier_preset_after_others_leaves_the_draft_as_it_alone_would() -> None:
    for draft in drafts():
        offered = [name for name in presets_for(draft.family_id, draft.demo) if name in TIER_PRESETS]
        for chain in itertools.product(offered, repeat=2):
            alone = applied(copy.deepcopy(draft), chain[-1])
            assert applied(copy.deepcopy(draft), *chain).data == alone.data, (draft.get("model.pretrained"), chain)
        for chain in itertools.permutations(offered, 3):
            alone = applied(copy.deepcopy(draft), chain[-1])
            assert applied(copy.deepcopy(draft), *chain).data == alone.data, (draft.get("model.pretrained"), chain)


def test_what_qa_found_left_behind_is_put_back() -> None:
    demo = Session.for_demo()
    steps, resolution = demo.get("training.max_train_steps"), demo.get("dataset.resolution")
    session = applied(Session.for_demo(), "cpu-demo", "lora")
    assert session.get("training.max_train_steps") == steps
    session = applied(Session.for_demo(), "sdxl-full", "lora")
    assert session.get("dataset.resolution") == resolution
    schedule = ("optimizer.lr_scheduler", "optimizer.lr_warmup_steps")
    assert [session.get(key) for key in schedule] == [demo.get(key) for key in schedule] == ["cosine", 60]
    assert session.get("saving.unet_half") is False


def test_a_warm_up_set_aside_under_a_presets_constant_schedule_is_put_back_too() -> None:
    """sdxl-lora's constant schedule sets its own lr_warmup_steps = 0 aside; the demo's cosine came back with cpu-demo,
    and that 0 with it, not the demo's 60-step warm-up."""
    session = applied(Session.for_demo(), "sdxl-lora", "cpu-demo")
    assert session.get("optimizer.lr_scheduler") == "cosine"
    assert session.get("optimizer.lr_warmup_steps") == Session.for_demo().get("optimizer.lr_warmup_steps") == 60


def test_a_warm_up_set_aside_under_the_users_constant_schedule_stays_aside() -> None:
    """sdxl-full's warm-up of 100 set aside by the constant schedule the user chose: lora put the demo's 60 back into
    the draft beside that constant schedule, an error Next refused ("warm-up needs lr_scheduler = ...")."""
    session = applied(Session.for_demo(), "sdxl-full")
    session.set("optimizer.lr_scheduler", "constant")
    settle(session, {"optimizer.lr_scheduler"})
    applied(session, "lora")
    assert session.get("optimizer.lr_scheduler") == "constant" and session.validate()[1] == []
    session.set("optimizer.lr_scheduler", "cosine")  # the demo's warm-up comes back with a schedule that warms up
    settle(session, {"optimizer.lr_scheduler"})
    assert session.get("optimizer.lr_warmup_steps") == Session.for_demo().get("optimizer.lr_warmup_steps") == 60


def test_a_setting_the_user_changed_after_a_preset_stays() -> None:
    session = applied(Session.for_demo(), "sdxl-lora")
    session.set("dataset.resolution", 768)
    assert applied(session, "lora").get("dataset.resolution") == 768


async def test_apply_on_the_screen_puts_back_what_the_preset_before_set() -> None:
    app = make_app(FakeEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        app._started(Session())
        await pilot.pause(0.2)
        screen = await at_step(app, pilot, 3, "ParametersScreen")
        resolution = app.session.get("dataset.resolution")
        for name in ("sdxl-full", "full"):
            screen.query_one("#par-preset", Select).value = name
            await pilot.click("#par-apply")
            await pilot.pause(0.2)
        assert app.session.get("dataset.resolution") == resolution
        assert app.session.get("optimizer.lr_scheduler") is None and app.session.get("optimizer.lr_warmup_steps") is None
        assert app.session.get("saving.unet_half") is None


async def test_settings_typed_in_the_form_stay_even_at_the_values_the_preset_put() -> None:
    """sdxl-full's 1024 px and warm-up of 100 typed again by hand (cleared, then the same value): full took them for
    untouched and put the draft's own back (warm-up none)."""
    from textual.widgets import Button, Input

    app = make_app(FakeEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        app._started(Session())
        await pilot.pause(0.2)
        screen = await at_step(app, pilot, 3, "ParametersScreen")
        screen.query_one("#par-preset", Select).value = "sdxl-full"
        await pilot.click("#par-apply")
        await pilot.pause(0.2)
        screen.query_one("#sec-optimizer").collapsed = False  # advanced rows are built when opened
        await pilot.pause(0.2)
        for key, value in (("dataset--resolution", "1024"), ("optimizer--lr_warmup_steps", "100")):
            for typed in ("", value):
                screen.query_one(f"#f-{key}", Input).value = typed
                await pilot.pause(0.1)
        screen.query_one("#par-preset", Select).value = "full"
        screen.query_one("#par-apply", Button).press()  # scrolled out of view by the opened section
        await pilot.pause(0.2)
        assert app.session.get("dataset.resolution") == 1024
        # full puts the constant scheduler back (not edited), under which a warm-up is an error: set aside, not lost.
        assert app.session.get("optimizer.lr_scheduler") is None and app.session.aside["optimizer.lr_warmup_steps"] == 100
        screen.query_one("#f-optimizer--lr_scheduler", Select).value = "constant_with_warmup"
        await pilot.pause(0.2)
        assert app.session.get("optimizer.lr_warmup_steps") == 100


async def test_an_sd2_models_presets_are_labelled_by_sd2s_cards() -> None:
    """For an SD2.x model on a 20 GB card the wizard pre-selected `full` as "Full fine-tune (13–17 GB; …)" beside "Full +
    text encoder (18 GB and up)": SD1.5's cards, where SD2's figures put full-text-encoder at 20.7 GB. This SD2.x-v
    model's draft trains at its 768 px, which the SD presets keep: labelled by their figures there."""
    async with started(GpuEngine(20), Session(), "models/sd21") as (app, pilot):
        choice = (await at_step(app, pilot, 3, "ParametersScreen")).query_one("#par-preset", Select)
        labels = {value: str(label) for label, value in choice._options}
        assert app.session.get("dataset.resolution") == 768
        assert choice.value == "full"
        assert labels["full"] == "Full fine-tune (13–20 GB; 16–23 GB without bf16)"
        assert labels["full-text-encoder"] == "Full + text encoder (21 GB and up; 24 GB and up without bf16)"


async def test_the_hardware_step_advises_for_the_model_checked() -> None:
    """Back at the hardware step after the model step checked an SDXL model, a 24 GB card heard SD1.5's advice, "full
    fine-tune with text-encoder training", and "Full + text encoder (18 GB and up)", which the Parameters step then did
    not even offer; before the model is checked the advice says whose it is."""
    from tests.test_meter_ui import text_of

    engine = GpuEngine(24)
    async with started(engine, Session()) as (app, pilot):
        # models/sd21 is an SD2.x-v model: its draft trains at 768 px, advised by the SD presets' figures there.
        for model, family in [("models/sdxl-base", "sdxl"), ("models/flux", "flux"), ("models/sd21", "sd2-768")]:
            await redrafted(app, pilot, None)  # a new draft for each model: none checked yet
            session = app.session
            screen = await at_step(app, pilot, 0, "HardwareScreen")
            assert "This advice is for SD1.x" in " ".join(text_of(screen, "#hw-verdict").split()), model
            session.set("model.pretrained", model)
            session.adopt_model(engine.inspect_model(model))
            screen = await at_step(app, pilot, 0, "HardwareScreen")
            sentence, preset = verdict(engine.machine, family, session.trains_prior)  # a new draft's: without prior preservation
            shown = " ".join(text_of(screen, "#hw-verdict").split())
            assert " ".join(sentence.split()) in shown and preset_label(preset, family, session.trains_prior) in shown, shown
            assert "This advice is for SD1.x" not in shown, model


class HubEngine(GpuEngine):
    """A 16 GB card, and hub ids as the real engine describes one not downloaded: no family read."""

    def __init__(self) -> None:
        super().__init__(16)

    def inspect_model(self, source: str) -> ModelInfo:
        return ModelInfo(source, "hub", "Hugging Face hub id: downloaded when training starts", source)


async def test_a_hub_model_not_downloaded_is_preset_for_the_family_its_name_says() -> None:
    """Offline, stabilityai/stable-diffusion-xl-base-1.0 (not downloaded) stayed of no family: Parameters pre-selected
    SD1.5's `full`, "Full fine-tune (13–17 GB …)", at 512 px, where the VRAM line estimates it as SDXL (33.3 GB). Its
    presets, size and advice are now its name's family's, as the meter's and `dbtui hardware --profile`'s, said so."""
    from tests.test_meter_ui import text_of

    engine = HubEngine()
    async with started(engine, Session(), "stabilityai/stable-diffusion-xl-base-1.0") as (app, pilot):
        screen = await at_step(app, pilot, 3, "ParametersScreen")
        choice = screen.query_one("#par-preset", Select)
        assert {value for _, value in choice._options} - {Select.NULL} == set(presets_for("sdxl"))
        assert choice.value == verdict(engine.machine, "sdxl", prior=False)[1] == "sdxl-full"
        assert app.session.get("dataset.resolution") == 1024
        said = " ".join(text_of(screen, "#par-guessed").split())
        assert "its family, SDXL, is guessed from its name" in said, said
        screen = await at_step(app, pilot, 0, "HardwareScreen")
        shown = " ".join(text_of(screen, "#hw-verdict").split())
        assert preset_label("sdxl-full", "sdxl", prior=False) in shown and "guessed from its name" in shown, shown
        await redrafted(app, pilot, "someone/my-model")  # a name that says no family: as before
        screen = await at_step(app, pilot, 3, "ParametersScreen")
        assert {value for _, value in screen.query_one("#par-preset", Select)._options} - {Select.NULL} == set(presets_for(None))
        assert not screen.query("#par-guessed")


# One app for each engine: each model a new draft, its presets relabelled and chosen in turn on its own screen.
@pytest.mark.parametrize(("make_engine", "models"), [
    (lambda: GpuEngine(12), ("models/sd15", "models/sd21", "models/sdxl-base", "models/flux")),
    (HubEngine, ("someone/my-model",))], ids=["12gb", "hub"])
async def test_each_presets_label_shows_whole_in_the_closed_dropdown_at_80_columns(make_engine, models) -> None:
    """At 12 GB the Parameters step pre-selected "Full fine-tune, 8-bit Adam, bf16 weights (6–12" and, for Flux, "Flux
    LoRA, NF4 base, 512 px (12 GB; 12–17 GB": the dropdown beside "Preset" and Apply left 48 columns, the open list
    showed the label whole. Each preset offered for each family (both, before a hub model's family is known), judged
    with prior preservation and without, is now whole on one line of the screen when chosen."""
    from dbtui.widgets.preset_select import PresetSelect

    async with started(make_engine(), Session()) as (app, pilot):
        for model in models:
            await redrafted(app, pilot, model)
            screen = await at_step(app, pilot, 3, "ParametersScreen")
            choice = screen.query_one("#par-preset", PresetSelect)
            for prior in (False, True):
                app.session.set("prior.enabled", prior)
                choice.relabel()
                labels = {value: str(label) for label, value in choice._options if value is not Select.NULL}
                assert len(labels) >= 4, model  # the family's tier presets and the two modifiers
                for value, label in labels.items():
                    choice.value = value
                    await pilot.pause()
                    lines = [strip.text for strip in app.screen._compositor.render_strips()]
                    assert any(label in line for line in lines), (model, label, [line for line in lines if label[:12] in line])


async def test_prior_preservation_turned_on_after_the_tier_preset_offers_the_preset_that_fits_the_card_with_it() -> None:
    """On a 16 GB card a Flux draft (prior preservation off) was pre-selected flux-lora-24gb; applied, then the person
    preset (or the switch) turned prior preservation on: 1024 px with class images needs 17.2 GB on the card by the meter,
    and the dropdown still showed "Person", with no word that the card's preset had changed. It now pre-selects the
    preset the advice picks with prior preservation, and says so; applied, the draft fits the card."""
    from engine.memory.preset_table import load_preset_estimates
    from textual.widgets import Switch

    engine = GpuEngine(16)
    async with started(engine, Session()) as (app, pilot):
        for how in ("person preset", "switch"):  # one app: each way on a new Flux draft of its own
            told: list[str] = []
            await redrafted(app, pilot, "models/flux")
            screen = await at_step(app, pilot, 3, "ParametersScreen")
            app.notify = lambda message, **_: told.append(str(message))
            choice = screen.query_one("#par-preset", Select)
            assert choice.value == verdict(engine.machine, "flux", prior=False)[1] == "flux-lora-24gb"
            screen.action_apply_preset()
            if how == "switch":
                screen.query_one("#f-prior--enabled", Switch).value = True
            else:
                choice.value = "person"
                screen.action_apply_preset()
            await pilot.pause(0.3)
            assert app.session.trains_prior, how
            advised = verdict(engine.machine, "flux", prior=True)[1]
            assert advised == "flux-lora-16gb" and choice.value == advised, how
            assert any("Flux LoRA, NF4 base, 512 px" in line and "Apply" in line for line in told), told
            screen.action_apply_preset()
            await pilot.pause(0.2)
            assert app.session.get("dataset.resolution") == 512, how
            assert load_preset_estimates()[advised].need(prior=True).fits(16)
