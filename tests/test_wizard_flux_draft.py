"""A draft for a Flux model, at 80x24: it starts at what Flux trains with, and its form does not offer what Flux does not
read, where its problems panel then warned of them."""

from __future__ import annotations

import pytest
from textual.widgets import Input

from dbtui.app import make_app
from dbtui.engine_facade import ModelInfo
from dbtui.screens.family_defaults import adopt_family_defaults
from dbtui.session import Session
from test_flux_wizard import FLUX_REFUSES, flux_draft, open_parameters, sd_draft_flux_refuses
from test_wizard_sdxl import SIZE, at_a_new_profiles_model_step, check_model, help_of, settle, visible
from wizard_fakes import FakeEngine


class HubEngine(FakeEngine):
    """Hub ids as the real engine describes one not downloaded: no family read, its name's guessed."""

    def inspect_model(self, source: str) -> ModelInfo:
        return ModelInfo(source, "hub", "Hugging Face hub id: downloaded when training starts", source)


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def warned_keys(session: Session) -> set[str]:
    session.set("concepts.0.instance_dir", "data/dog")  # a valid draft: warnings are made of a valid profile alone
    return {problem.key for problem in session.review().warnings}


async def test_a_new_flux_draft_starts_in_bf16_and_a_precision_set_by_hand_stays() -> None:
    """A new draft started at fp16 (the schema's default) for Flux, and Parameters then warned that Flux overflows in
    fp16: the user had to fix what the wizard had chosen."""
    app = make_app(FakeEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await at_a_new_profiles_model_step(pilot)
        await check_model(pilot, "builtin:tiny-sd1")
        assert app.session.get("precision.mixed_precision") is None  # SD's default works: nothing is set
        await check_model(pilot, "models/flux")
        assert app.session.get("precision.mixed_precision") == "bf16"
        assert "precision.mixed_precision" not in warned_keys(app.session)

        app.session.edit("precision.mixed_precision", "no")  # the user's own choice
        await check_model(pilot, "builtin:tiny-sd1")
        await check_model(pilot, "models/flux")
        assert app.session.get("precision.mixed_precision") == "no"


async def test_an_sd_model_checked_after_a_flux_one_takes_back_its_bf16_but_not_the_users() -> None:
    """A new draft checked with a Flux model got bf16, and kept it when the user then checked an SD model instead:
    SD's default is fp16, and nobody had chosen bf16."""
    app = make_app(FakeEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await at_a_new_profiles_model_step(pilot)
        await check_model(pilot, "models/flux")
        assert app.session.get("precision.mixed_precision") == "bf16"
        await check_model(pilot, "builtin:tiny-sd1")
        assert app.session.get("precision.mixed_precision") is None  # the schema's default, as a draft never on Flux

        await check_model(pilot, "models/flux")
        app.session.edit("precision.mixed_precision", "bf16")  # the user's own choice, at the value Flux put
        await check_model(pilot, "builtin:tiny-sd1")
        assert app.session.get("precision.mixed_precision") == "bf16"



async def test_a_new_draft_for_a_flux_hub_id_not_downloaded_starts_in_bf16() -> None:
    """black-forest-labs/FLUX.1-dev, the Model step's own example, is read by its name until it downloads: the draft
    stayed in fp16 while the problems panel, judging by that name, warned that Flux overflows in fp16."""
    app = make_app(HubEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await at_a_new_profiles_model_step(pilot)
        await check_model(pilot, "black-forest-labs/FLUX.1-dev")
        assert app.session.family_id is None and app.session.advised_family == "flux"
        assert app.session.get("precision.mixed_precision") == "bf16"
        assert "precision.mixed_precision" not in warned_keys(app.session)

async def negative_prompt_field(pilot, session: Session):
    await open_parameters(pilot, session)
    screen = pilot.app.screen
    screen.query_one("#sec-sampling").collapsed = False  # its rows are built when opened
    await settle(pilot, 0.3)
    return screen, screen.query_one("#f-sampling--negative_prompt", Input)


async def test_a_flux_form_greys_out_the_negative_prompt_and_says_why() -> None:
    """Flux's form offered sampling.negative_prompt as any other field, and the problems panel then warned that Flux
    ignores it."""
    app = make_app(FakeEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen, field = await negative_prompt_field(pilot, flux_draft(FakeEngine()))
        assert field.disabled
        assert "Not used by Flux" in help_of(screen, "sampling.negative_prompt")


async def test_a_negative_prompt_a_flux_draft_holds_is_kept_and_can_be_emptied() -> None:
    app = make_app(FakeEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        session = flux_draft(FakeEngine())
        session.set("sampling.negative_prompt", "blurry")
        screen, field = await negative_prompt_field(pilot, session)
        assert field.value == "blurry" and app.session.get("sampling.negative_prompt") == "blurry"
        assert not field.disabled  # the panel's warning says to empty it
        assert "Not used by Flux" in help_of(screen, "sampling.negative_prompt")


async def test_an_sd_form_offers_the_negative_prompt() -> None:
    app = make_app(FakeEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        session = Session.for_demo()
        session.adopt_model(FakeEngine().inspect_model("builtin:tiny-sd1"))
        screen, field = await negative_prompt_field(pilot, session)
        assert not field.disabled and "Not used" not in help_of(screen, "sampling.negative_prompt")


async def test_a_flux_hub_id_not_downloaded_greys_out_the_negative_prompt() -> None:
    """Read by its name until it downloads, black-forest-labs/FLUX.1-dev offered the negative prompt as any field while
    the problems panel, judging by that name, warned that Flux takes none."""
    app = make_app(HubEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        session = Session.for_demo()
        session.set("model.pretrained", "black-forest-labs/FLUX.1-dev")
        session.adopt_model(HubEngine().inspect_model("black-forest-labs/FLUX.1-dev"))
        screen, field = await negative_prompt_field(pilot, session)
        assert field.disabled
        assert "Not used by Flux" in help_of(screen, "sampling.negative_prompt")


async def test_a_flux_hub_id_not_downloaded_has_the_flux_help() -> None:
    """Read by its name until it downloads, black-forest-labs/FLUX.1-dev got bf16 and Flux's warnings, while the form's
    help stayed SD's: 'fp16 (most GPUs)' beside a precision the wizard had set to bf16 because Flux overflows in fp16."""
    app = make_app(HubEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        session = Session.for_demo()
        session.set("model.pretrained", "black-forest-labs/FLUX.1-dev")
        session.adopt_model(HubEngine().inspect_model("black-forest-labs/FLUX.1-dev"))
        await open_parameters(pilot, session)
        await settle(pilot, 0.3)
        assert "Flux was not made for fp16" in help_of(pilot.app.screen, "precision.mixed_precision")


async def test_a_flux_hub_id_not_downloaded_sets_aside_what_flux_refuses_and_offers_its_flow() -> None:
    """Read by its name until it downloads, black-forest-labs/FLUX.1-dev kept min-SNR, clip skip and the text encoder
    of a full fine-tune in the form (the family rules read the family from files alone) and hid Flux's flow options,
    while its help and defaults were Flux's."""
    app = make_app(HubEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await open_parameters(pilot, sd_draft_flux_refuses())
        app.goto(1)
        await settle(pilot)
        await check_model(pilot, "black-forest-labs/FLUX.1-dev")
        assert app.session.family_id is None and app.session.advised_family == "flux"
        assert all(app.session.get(key) is None for key in FLUX_REFUSES)
        app.goto(3)
        await settle(pilot)
        app.screen.query_one("#sec-training").collapsed = False
        await settle(pilot, 0.3)
        for key in FLUX_REFUSES:
            assert not visible(app.screen, f"#row-f-{key.replace('.', '--')}"), key
        assert visible(app.screen, "#sec-training--flow")


def new_draft_for(source: str) -> Session:
    """A new draft as the wizard makes it once its model step checked ``source`` (Flux's bf16 put where it goes)."""
    session = Session()
    session.set("concepts.0.instance_dir", "data/dog")
    session.set("model.pretrained", source)
    session.adopt_model(FakeEngine().inspect_model(source))
    adopt_family_defaults(session)
    return session


async def reopened_at_its_model_step(pilot, session: Session) -> None:
    """The draft saved and opened again (as the Open screen does), then its model step, which checks its model."""
    path = session.save("profiles/saved.toml")
    pilot.app._started(Session.from_file(path))
    await settle(pilot)
    pilot.app.goto(1)
    await settle(pilot)


async def test_a_reopened_flux_draft_switched_to_sd_takes_back_flux_bf16_as_an_unsaved_one_does() -> None:
    """A Flux draft saved and reopened kept Flux's bf16 when an SD model was checked instead: the saved file names every
    setting, and the wizard only took back what it had put in this session. Flux's own value is taken for Flux's."""
    app = make_app(FakeEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await reopened_at_its_model_step(pilot, new_draft_for("models/flux"))
        assert app.session.get("precision.mixed_precision") == "bf16"  # an opened profile's value stays
        await check_model(pilot, "builtin:tiny-sd1")
        assert app.session.get("precision.mixed_precision") in (None, "fp16")
        await check_model(pilot, "models/flux")
        assert app.session.get("precision.mixed_precision") == "bf16"


async def test_a_reopened_sd_draft_switched_to_flux_takes_flux_bf16_as_an_unsaved_one_does() -> None:
    """The other way: the saved SD draft names fp16, the schema's default, and a Flux model checked instead kept it
    (with Flux's warning that it overflows in fp16), where an unsaved draft took bf16."""
    app = make_app(FakeEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await reopened_at_its_model_step(pilot, new_draft_for("builtin:tiny-sd1"))
        assert app.session.get("precision.mixed_precision") == "fp16"  # the saved file names the default
        await check_model(pilot, "models/flux")
        assert app.session.get("precision.mixed_precision") == "bf16"
        assert "precision.mixed_precision" not in warned_keys(app.session)


async def test_a_precision_the_user_set_in_a_reopened_draft_stays_across_families() -> None:
    app = make_app(FakeEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await reopened_at_its_model_step(pilot, new_draft_for("models/flux"))
        app.session.edit("precision.mixed_precision", "bf16")  # chosen by hand, at Flux's value
        await check_model(pilot, "builtin:tiny-sd1")
        assert app.session.get("precision.mixed_precision") == "bf16"
