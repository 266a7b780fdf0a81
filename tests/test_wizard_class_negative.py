"""The Dataset step's class negative prompt: a Flux profile opened from a file with one got Flux's warning that it is not
used ("leave it empty"), and the wizard had no field to empty it, nor one to write it for an SD model."""

from __future__ import annotations

import pytest
from textual.widgets import Input

from dbtui.app import make_app
from dbtui.session import Session
from test_wizard_flux_draft import reopened_at_its_model_step, warned_keys
from test_wizard_sdxl import SIZE
from wizard_fakes import FakeEngine
from wizard_steps import at_step, settle

KEY = "concepts.0.class_negative_prompt"


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


async def test_a_flux_profiles_class_negative_prompt_is_shown_and_can_be_emptied() -> None:
    saved = Session()
    saved.set("concepts.0.instance_dir", "data/dog")
    saved.set("model.pretrained", "models/flux")
    saved.set(KEY, "blurry")
    app = make_app(FakeEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await reopened_at_its_model_step(pilot, saved)  # the model step checks it: the draft is Flux's
        assert KEY in warned_keys(app.session)
        screen = await at_step(app, pilot, 2, "DatasetScreen")
        field = screen.query_one("#ds-class_negative_prompt", Input)
        assert field.value == "blurry"
        field.value = ""
        await settle(pilot)
        assert app.session.get(KEY) is None and KEY not in warned_keys(app.session)


async def test_an_sd_draft_takes_a_class_negative_prompt_typed_in_the_dataset_step() -> None:
    app = make_app(FakeEngine(), Session.for_demo(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await at_step(app, pilot, 2, "DatasetScreen")
        screen.query_one("#ds-class_negative_prompt", Input).value = "lowres"
        await settle(pilot)
        assert app.session.profile().concepts[0].class_negative_prompt == "lowres"
