"""Apply says what a preset changed: the person and style presets' names say it ("prior preservation", "no class
images"), where "Applied: Full fine-tune" left the tier preset's changes to be found field by field."""

from __future__ import annotations

import pytest
from textual.widgets import Select

from dbtui.app import make_app
from dbtui.session import Session
from wizard_fakes import FakeEngine
from wizard_steps import at_step

SIZE = (80, 24)


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


async def test_each_preset_applied_says_the_settings_it_changed() -> None:
    app = make_app(FakeEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        app._started(Session())
        await pilot.pause(0.2)
        screen = await at_step(app, pilot, 3, "ParametersScreen")
        said = []
        for name in ("lora", "full", "full", "person"):
            screen.query_one("#par-preset", Select).value = name
            screen.query_one("#par-apply").press()
            await pilot.pause(0.2)
            said.append(list(app._notifications)[-1].message)
    lora, full, again, person = said
    assert lora.startswith("Applied: LoRA. Changed ") and "optimizer.learning_rate = 0.0001" in lora, lora
    assert 'training.method = "full"' in full and "optimizer.learning_rate = 2e-06" in full, full
    assert "training.lora" not in full  # a full fine-tune's form has no LoRA rank to look for
    assert again == "Applied: Full fine-tune. Changed nothing: the draft had its settings already.", again
    assert "Changed prior.enabled = true" in person, person
