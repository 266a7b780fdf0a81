"""The VRAM line on a GPU without bf16 when the Parameters screen came before the hardware probe's answer: Next left
the hardware step while its probe ran, or an attached run's dashboard led there without any probe. The line estimated
bf16 settings as bf16 (no "(as fp16 here)"), while this GPU trains them in fp16 and `dbtui fit --estimate-only` says
fp16's figure. The probe here answers when the test lets it, never by a timing."""

from __future__ import annotations

import pytest

from tests.test_meter_ui import text_of
from wizard_fakes import HeldProbe
from wizard_steps import held_probe_wizard, parameters_before_the_probe, parameters_from_an_attached_run, until


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


async def _estimated_as_bf16_then_fp16(pilot, engine: HeldProbe) -> None:
    """On Parameters with the probe held: the estimate is the profile's (no GPU known); once the probe answers, the
    line is estimated again as this GPU trains the settings."""
    app = pilot.app
    await until(pilot, lambda: type(app.screen).__name__ == "ParametersScreen" and engine.probes == 1
                and len(engine.estimated) >= 1 and not app.screen.query_one("#par-vram").waiting)
    await until(pilot, lambda: "on the card" in text_of(app.screen, "#par-vram"))
    assert app.session.hardware is None and "as fp16" not in text_of(app.screen, "#par-vram")
    engine.answer.set()
    await until(pilot, lambda: "as fp16" in text_of(app.screen, "#par-vram"))
    assert app.session.hardware is not None and engine.estimated[-1].precision.mixed_precision == "fp16"
    assert "on the card (as fp16 here) · fits" in text_of(app.screen, "#par-vram")
    assert engine.probes == 1  # Parameters asked for no second probe while one was under way
    engine.answer.set()


async def test_a_probe_that_answers_after_next_estimates_again_as_this_gpu_trains() -> None:
    engine = HeldProbe()
    async with held_probe_wizard(engine) as pilot:
        await parameters_before_the_probe(pilot, engine, "d", precision__mixed_precision="bf16")
        await _estimated_as_bf16_then_fp16(pilot, engine)


async def test_parameters_reached_without_the_hardware_step_probes_this_machine() -> None:
    engine = HeldProbe()
    async with held_probe_wizard(engine) as pilot:
        await parameters_from_an_attached_run(pilot, precision__mixed_precision="bf16")
        await _estimated_as_bf16_then_fp16(pilot, engine)
