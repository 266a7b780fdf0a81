"""The VRAM line on a GPU without bf16 when Next left the hardware step before its probe answered: the Parameters
screen estimated bf16 settings as bf16 (no "(as fp16 here)"), while this GPU trains them in fp16 and `dbtui fit
--estimate-only` says fp16's figure; the line kept that figure until the next edit."""

from __future__ import annotations

import time

import pytest

from dbtui.app import make_app
from dbtui.engine_facade import HardwareReport
from dbtui.session import Session
from engine.hardware.machine import Gpu, Hardware
from tests.test_meter_ui import SIZE, text_of
from wizard_fakes import FakeEngine
from wizard_steps import until


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


class SlowT4(FakeEngine):
    def probe_hardware(self, path: str) -> HardwareReport:
        time.sleep(1.0)
        return HardwareReport(Hardware(gpus=[Gpu(0, "T4", 15_000, 15_000, "7.5", False)]), "", "lora")


async def test_a_probe_that_answers_after_next_estimates_again_as_this_gpu_trains() -> None:
    engine = SlowT4()
    app = make_app(engine, Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("d")  # the demo, its probe under way
        await pilot.pause()
        assert app.session.hardware is None
        app.session.set("precision.mixed_precision", "bf16")
        app.goto(3)  # Next before the probe answered
        await until(pilot, lambda: app.session.hardware is not None)
        await app.workers.wait_for_complete()
        await until(pilot, lambda: "as fp16" in text_of(app.screen, "#par-vram") or len(engine.estimated) > 1, 3.0)
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert engine.estimated[-1].precision.mixed_precision == "fp16"
        assert "on the card (as fp16 here) · fits" in text_of(app.screen, "#par-vram")
