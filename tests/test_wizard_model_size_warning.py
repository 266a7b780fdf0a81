"""The demo's draft trains at its tiny model's 64 px. Switched to an SDXL model on the Model step, it said nothing of
training a 1024 px model at 64 px where the model's size is not read here (a hub id not downloaded: its name tells the
family), and only 'this profile trains at 64 px' where it is (a local folder), with no word that this loses detail.
Both now warn, with validate's words, and say the size to train at."""

from __future__ import annotations

import pytest
from textual.widgets import Static

from dbtui.app import make_app
from dbtui.engine_facade import ModelInfo
from dbtui.session import Session
from test_wizard_sdxl import check_model
from wizard_fakes import FakeEngine
from wizard_steps import at_step

SDXL_HUB = "stabilityai/stable-diffusion-xl-base-1.0"
WARNING = "⚠ At 64 px its images lose detail, and the model drifts from what it learned: train at 1024 px, or near it."


class HubEngine(FakeEngine):
    def inspect_model(self, source: str) -> ModelInfo:
        if source == SDXL_HUB:
            return ModelInfo(source, "hub", "Hugging Face hub id: downloaded when training starts", source)
        return super().inspect_model(source)


@pytest.mark.parametrize(("source", "size_said"), [
    (SDXL_HUB, "Likely made for 1024 px images (by its name); this profile trains at 64 px (dataset.resolution in "
               "Parameters)."),
    ("models/sdxl-base", "Made for 1024 px images; this profile trains at 64 px (dataset.resolution in Parameters)."),
])
async def test_the_demo_switched_to_an_sdxl_model_is_warned_of_its_64_px(tmp_path, monkeypatch, source: str,
                                                                         size_said: str) -> None:
    monkeypatch.chdir(tmp_path)
    app = make_app(HubEngine(), Session.for_demo(), image_renderer="none")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await at_step(app, pilot, 1, "ModelScreen")
        family = screen.query_one("#model-family", Static)
        assert "⚠" not in str(family.render())  # the tiny model at its own 64 px
        await check_model(pilot, source)
        assert app.session.get("dataset.resolution") == 64  # the demo's, kept: the user is told, not overruled
        assert str(family.render()).splitlines()[1:] == [size_said, WARNING]
        assert family.region.bottom <= screen.query_one("#model-folder").region.y  # all in view at 80x24, above the next


@pytest.mark.parametrize(("source", "native"), [
    ("stabilityai/stable-diffusion-2-1", 768), ("stabilityai/stable-diffusion-2-1-base", 512),
    ("stabilityai/stable-diffusion-2", 768), ("stable-diffusion-v1-5/stable-diffusion-v1-5", 512),
])
def test_an_sd2_hub_id_is_told_its_own_size(source: str, native: int) -> None:
    """SD2.1 (a 768 px model) by its hub id was told 'Likely made for 512 px', the SD family's usual size, and a draft of
    it at 1024 px (1.33× its own) was warned to train at 512 px."""
    from dbtui.screens.model_words import family_text

    session = Session()
    session.set("model.pretrained", source)
    info = ModelInfo(source, "hub", "Hugging Face hub id: downloaded when training starts", source)
    session.adopt_model(info)
    assert session.get("dataset.resolution") == native  # a new draft takes it
    said = str(family_text(info, session.get("dataset.resolution"), session.guessed_size)).splitlines()
    assert said[1] == f"Likely made for {native} px images (by its name): the dataset step checks yours at that size."
    session.set("dataset.resolution", 1024)
    said = str(family_text(info, 1024, session.guessed_size)).splitlines()
    assert ("⚠" in said[-1]) == (native == 512)


@pytest.mark.parametrize("resolution", [0, -3, 36, True, "768px"])
def test_a_resolution_the_profile_refuses_is_not_warned_of_on_the_model_step(resolution: object) -> None:
    """0 or -3 typed on Parameters was told "⚠ At 0 px its images lose detail…" here, of a size the schema refuses
    (Parameters marks it); a size it takes, far from the model's, still is."""
    from dbtui.screens.model_words import family_text

    info = ModelInfo(SDXL_HUB, "hub", "Hugging Face hub id: downloaded when training starts", SDXL_HUB)
    assert "⚠" not in str(family_text(info, resolution, 1024))
    assert str(family_text(info, 64, 1024)).splitlines()[-1] == WARNING


@pytest.mark.parametrize("resolution", [0, -3, 36, True, "768px"])
def test_a_resolution_the_profile_refuses_is_not_said_to_be_trained_at(resolution: object) -> None:
    """0 typed on Parameters was told "this profile trains at 0 px" here ("768px px" of a text), of a size the schema
    refuses: the line now sends the user to Parameters, where that value is marked."""
    from dbtui.screens.model_words import size_line

    said = size_line(1024, resolution, guessed=True)
    assert said == ("Likely made for 1024 px images (by its name); dataset.resolution in Parameters is no size a profile "
                    "takes: set one there."), said
    assert size_line(1024, 768) == "Made for 1024 px images; this profile trains at 768 px (dataset.resolution in Parameters)."


async def test_the_model_step_of_a_draft_at_0_px_sends_the_user_to_parameters(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    session = Session.for_demo()
    session.set("dataset.resolution", 0)
    app = make_app(HubEngine(), session, image_renderer="none")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await at_step(app, pilot, 1, "ModelScreen")
        said = " ".join(str(screen.query_one("#model-family", Static).render()).split())
        assert "0 px" not in said and "is no size a profile takes: set one there." in said, said
