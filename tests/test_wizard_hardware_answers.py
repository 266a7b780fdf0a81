"""The hardware probe's answer, late or failed, as the wizard shows it: the preset Parameters recommends when the probe
answered after Next (or Parameters came from an attached run), and the hardware step after a probe that failed. The
probe here answers or fails when the test lets it, never by a timing."""

from __future__ import annotations

import copy

import pytest
from textual.widgets import Select

from dbtui.presets import preset_label, recommended_preset
from engine.hardware.machine import verdict
from tests.test_meter_ui import text_of
from wizard_fakes import T4, HeldProbe
from wizard_steps import (held_probe_wizard, parameters_before_the_probe, parameters_from_an_attached_run, settle,
                          until)


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def _preset(app) -> object:
    return app.screen.query_one("#par-preset", Select).value


async def _on_parameters_held(pilot, engine: HeldProbe) -> None:
    app = pilot.app
    await until(pilot, lambda: type(app.screen).__name__ == "ParametersScreen" and engine.probes == 1)
    await pilot.pause()
    assert app.session.hardware is None and _preset(app) is Select.NULL


async def test_a_probe_that_answers_after_next_fills_in_the_recommended_preset() -> None:
    engine = HeldProbe()
    async with held_probe_wizard(engine) as pilot:
        await parameters_before_the_probe(pilot, engine, "n")
        await _on_parameters_held(pilot, engine)
        engine.answer.set()
        expected = recommended_preset(T4, pilot.app.session.family_id, prior=pilot.app.session.trains_prior)
        assert expected is not None
        await until(pilot, lambda: _preset(pilot.app) == expected)


async def test_parameters_from_an_attached_run_fills_in_the_recommended_preset_once_probed() -> None:
    engine = HeldProbe()
    async with held_probe_wizard(engine) as pilot:
        await parameters_from_an_attached_run(pilot)
        await _on_parameters_held(pilot, engine)
        engine.answer.set()
        expected = recommended_preset(T4, pilot.app.session.family_id, demo=True, prior=pilot.app.session.trains_prior)
        assert expected is not None
        await until(pilot, lambda: _preset(pilot.app) == expected)


async def test_a_late_answer_keeps_the_preset_and_values_chosen_on_parameters(monkeypatch) -> None:
    from dbtui.screens.parameters import ParametersScreen

    heard: list[object] = []
    handler = ParametersScreen.on_hardware_known

    def on_hardware_known(screen, message) -> None:
        handler(screen, message)
        heard.append(message)

    monkeypatch.setattr(ParametersScreen, "on_hardware_known", on_hardware_known)  # to wait until Parameters heard it
    engine = HeldProbe()
    async with held_probe_wizard(engine) as pilot:
        app = pilot.app
        await parameters_before_the_probe(pilot, engine, "n")
        await _on_parameters_held(pilot, engine)
        app.screen.query_one("#par-preset", Select).value = "lora"  # the user's choice, before the answer
        app.screen.action_apply_preset()
        values = copy.deepcopy(app.session.data)
        engine.answer.set()
        await until(pilot, lambda: bool(heard))
        await settle(pilot)
        assert _preset(app) == "lora"
        assert app.session.get("training.method") == "lora" and app.session.data == values


async def test_a_failed_probe_shows_the_failure_and_a_recheck_after_it_answers() -> None:
    engine = HeldProbe(failing=1)
    async with held_probe_wizard(engine) as pilot:
        app = pilot.app
        await pilot.press("n")
        await until(pilot, lambda: engine.probes == 1)
        screen = app.screen
        assert type(screen).__name__ == "HardwareScreen" and screen.query_one("#hw-loading").display
        engine.answer.set()
        await until(pilot, lambda: not app.probing)
        await until(pilot, lambda: not screen.query_one("#hw-loading").display)
        assert "nvidia-smi timed out" in text_of(screen, "#hw-verdict")
        # Whether there is a GPU is not known: a machine without one has the demo's button to go on with.
        assert screen.query_one("#hw-demo").display and "Use the demo" in text_of(screen, "#hw-verdict")
        await pilot.press("r")  # check again
        await until(pilot, lambda: engine.probes == 2)
        await until(pilot, lambda: app.session.hardware is not None)
        await until(pilot, lambda: not screen.query_one("#hw-loading").display)
        shown = " ".join(text_of(screen, "#hw-verdict").split())
        # The advice for this draft, which trains without prior preservation: the engine's, not the probe's own sentence.
        assert " ".join(verdict(T4, "sd", prior=False)[0].split()) in shown and "nvidia-smi" not in shown, shown
        assert preset_label(verdict(T4, "sd", prior=False)[1], "sd", prior=False) in text_of(screen, "#hw-verdict")
        assert not screen.query_one("#hw-demo").display  # the T4 answered: the demo is not its path


async def test_use_the_demo_is_offered_once_the_probe_said_there_is_no_gpu_not_while_it_probes() -> None:
    engine = HeldProbe()
    async with held_probe_wizard(engine) as pilot:
        app = pilot.app
        await pilot.press("n")
        await until(pilot, lambda: engine.probes == 1)
        screen = app.screen
        await pilot.pause()
        assert type(screen).__name__ == "HardwareScreen" and screen.query_one("#hw-loading").display
        assert not screen.query_one("#hw-demo").display  # not known to be a machine without a GPU yet
        engine.answer.set()
        await until(pilot, lambda: app.session.hardware is not None)
        await until(pilot, lambda: not screen.query_one("#hw-loading").display)
        assert not screen.query_one("#hw-demo").display  # the T4 trains: the demo is not its path
