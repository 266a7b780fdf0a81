"""Apply says what a preset changed: the person and style presets' names say it ("prior preservation", "no class
images"), where "Applied: Full fine-tune" left the tier preset's changes to be found field by field."""

from __future__ import annotations

import copy

import pytest
from textual.widgets import Select

from dbtui.app import make_app
from dbtui.session import Session
from test_flux_wizard import flux_draft, open_parameters
from wizard_fakes import FakeEngine
from wizard_steps import at_step, settle

SIZE = (80, 24)


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


async def applied(pilot, name: str) -> str:
    screen = pilot.app.screen
    screen.query_one("#par-preset", Select).value = name
    screen.query_one("#par-apply").press()
    await pilot.pause(0.2)
    return list(pilot.app._notifications)[-1].message


async def test_each_preset_applied_says_the_settings_it_changed() -> None:
    app = make_app(FakeEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        app._started(Session())
        await pilot.pause(0.2)
        await at_step(app, pilot, 3, "ParametersScreen")
        said = [await applied(pilot, name) for name in ("lora", "full", "full", "person")]
    lora, full, again, person = said
    assert lora.startswith("Applied: LoRA. Changed ") and "optimizer.learning_rate = 0.0001" in lora, lora
    assert 'training.method = "full"' in full and "optimizer.learning_rate = 2e-06" in full, full
    assert "training.lora" not in full  # a full fine-tune's form has no LoRA rank to look for
    assert again == "Applied: Full fine-tune. Changed nothing: the draft had its settings already.", again
    assert "Changed prior.enabled = true" in person, person


async def test_a_flux_preset_says_it_put_the_nf4_base_back() -> None:
    """The base weights are Parameters' own row, not a form field: a Flux preset applied over the bf16 base the user
    chose said "Changed nothing" while it put the 4-bit base back."""
    app = make_app(FakeEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await open_parameters(pilot, flux_draft(FakeEngine()))
        first = await applied(pilot, "flux-lora-24gb")
        app.screen.query_one("#par-quantize", Select).value = "none"
        await settle(pilot)
        again = await applied(pilot, "flux-lora-24gb")
        assert app.session.get("model.quantize") == "nf4"
    assert 'model.quantize = "nf4"' in first, first
    assert again == 'Applied: Flux LoRA, NF4 base, 1024 px. Changed model.quantize = "nf4".', again


async def test_apply_with_no_preset_chosen_says_to_choose_one() -> None:
    """A new draft on a machine without a GPU pre-selects none; Apply then did nothing and said nothing."""
    app = make_app(FakeEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        app._started(Session())
        await pilot.pause(0.2)
        screen = await at_step(app, pilot, 3, "ParametersScreen")
        screen.query_one("#par-preset", Select).clear()
        before, notes = copy.deepcopy(screen.session.data), len(app._notifications)
        screen.query_one("#par-apply").press()
        await pilot.pause(0.2)
        said = [n.message for n in list(app._notifications)[notes:]]
        assert len(said) == 1 and "Choose a preset" in said[0] and "then Apply" in said[0], said
        assert screen.session.data == before
        assert app.focused is screen.query_one("#par-preset", Select)
