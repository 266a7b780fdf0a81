"""The memory meter where users decide: the parameters screen's VRAM line, the fit test, the presets."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from textual.widgets import Input, Static

from dbtui.app import make_app
from dbtui.presets import MODIFIERS, PRESETS, TIER_PRESETS
from dbtui.session import Session
from dbtui.widgets.vram_line import VramLine
from engine.memory.estimate import MemoryEstimate
from engine.memory.inputs import meter_key
from engine.memory.process import MeterProcessError, estimate_in_child
from tests.runs_helpers import ROOT, env
from tests.training_helpers import tiny_profile
from wizard_fakes import FakeEngine, fake_estimate
from wizard_steps import fit_result, vram_estimated

SIZE = (80, 24)


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # the meter's child finds this checkout from any folder


def screen_lines(app) -> list[str]:
    return [strip.text for strip in app.screen._compositor.render_strips()]


def text_of(screen, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


async def parameters(pilot):
    """The demo's parameters screen, its first estimate in."""
    await pilot.press("d")
    await pilot.pause()
    pilot.app.goto(3)
    await pilot.app.workers.wait_for_complete()
    await pilot.pause(0.3)
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    return pilot.app.screen


# -- the meter in a child process --------------------------------------------------------------

# A fresh interpreter, as the wizard is: the estimate arrives and torch never loads here.
CALLER = """
import json, sys
from dbtui.engine_facade import RealEngine
from engine.profile import load_profile
estimate = RealEngine().estimate_memory(load_profile(sys.argv[1]))
print(json.dumps({"estimate": estimate.to_dict(), "fits": estimate.fit_line(),
                  "heavy": sorted({"torch", "diffusers", "transformers"} & set(sys.modules))}))
"""


def test_the_wizard_gets_the_estimate_from_a_child_and_never_loads_torch(tmp_path: Path, tiny_sd1: Path) -> None:
    from engine.memory import estimate_peak
    from engine.profile import save_profile

    profile = tiny_profile(tmp_path, prior={"enabled": True}, concepts=[
        {"instance_dir": "builtin:demo-instance", "instance_prompt": "photo of zwx disc",
         "class_dir": "builtin:demo-class", "class_prompt": "photo of a disc"}])
    path = save_profile(profile, tmp_path / "p.toml")
    process = subprocess.run([sys.executable, "-c", CALLER, str(path)], cwd=ROOT, env=env(), capture_output=True,
                             text=True, timeout=600)
    assert process.returncode == 0, process.stderr[-3000:]
    report = json.loads(process.stdout.splitlines()[-1])
    assert report["heavy"] == []
    child = MemoryEstimate.from_dict(report["estimate"])
    here = estimate_peak(profile)
    assert child.batch == 2  # prior preservation doubles the images of a step
    assert (child.weights, child.optimizer_state, child.peak_allocated) == (here.weights, here.optimizer_state, here.peak_allocated)
    assert report["fits"] == here.fit_line()


def test_a_stopped_estimate_ends_its_child_at_once(tmp_path: Path) -> None:
    import psutil

    before = set(psutil.Process().children())
    asked = time.monotonic() + 1.0  # the caller loses interest a second in, long before the estimate is made
    stopped: list[float] = []  # when the stop was first seen: timed from there, as a loaded machine's start is slow

    def stop() -> bool:
        if time.monotonic() > asked and not stopped:
            stopped.append(time.monotonic())
        return bool(stopped)

    assert estimate_in_child(tiny_profile(tmp_path), stop=stop) is None
    assert time.monotonic() - stopped[0] < 4
    assert set(psutil.Process().children()) == before


def test_a_model_the_meter_cannot_read_gives_its_reason(tmp_path: Path) -> None:
    (tmp_path / "not-a-model").mkdir()
    with pytest.raises(MeterProcessError, match="no model_index.json") as raised:
        estimate_in_child(tiny_profile(tmp_path, model={"pretrained": str(tmp_path / "not-a-model")}))
    # The wizard says "Memory meter: not available: " before it; the child's own prefix doubled it.
    assert not str(raised.value).lower().startswith("memory meter")


def test_only_settings_that_change_memory_change_the_meters_key(tmp_path: Path) -> None:
    base = tiny_profile(tmp_path)
    same = tiny_profile(tmp_path, name="other", training={"max_train_steps": 999, "seed": 1}, optimizer={"learning_rate": 3e-5},
                        sampling={"steps": 5, "seed": 3}, saving={"output_dir": str(tmp_path / "elsewhere")})
    assert meter_key(same) == meter_key(base)
    for changed in ({"training": {"train_batch_size": 2}}, {"dataset": {"resolution": 32}}, {"training": {"method": "lora"}},
                    {"precision": {"gradient_checkpointing": True}}, {"optimizer": {"name": "adafactor"}},
                    {"model": {"pretrained": "builtin:tiny-sdxl"}}, {"sampling": {"num_images": 4}},
                    {"evaluation": {"enabled": True}}, {"saving": {"every_n_steps": None}}):
        assert meter_key(tiny_profile(tmp_path, **changed)) != meter_key(base), changed


# -- the parameters screen -------------------------------------------------------------------


async def test_the_parameters_screen_shows_the_estimate_at_80x24() -> None:
    engine = FakeEngine()
    app = make_app(engine, Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await parameters(pilot)
        profile = app.session.profile()
        expected = fake_estimate(profile).fit_line()  # the demo: 2 images a step (prior preservation)
        assert [meter_key(p) for p in engine.estimated] == [meter_key(profile)]  # at once, not after the debounce
        shown = [line for line in screen_lines(app) if "VRAM ≈" in line]
        assert len(shown) == 1 and expected in shown[0] and "12.3 GB on the card" in shown[0], shown


async def test_quick_changes_make_one_estimate_and_the_figure_follows_them() -> None:
    engine = FakeEngine()
    app = make_app(engine, Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await parameters(pilot)
        line = screen.query_one(VramLine)
        line.delay = 2.0  # the changes come well within it, even on a loaded machine
        before = text_of(screen, "#par-vram")
        field = screen.query_one("#f-training--train_batch_size", Input)
        async with vram_estimated(pilot, requests=3):
            for value in ("2", "3", "4"):  # typed one after another, each well within the delay
                field.value = value
                await pilot.pause(0.05)
            assert "estimating" in text_of(screen, "#par-vram")
            assert len(engine.estimated) == 1  # only the screen's first
        assert len(engine.estimated) == 2 and engine.estimated[-1].training.train_batch_size == 4
        after = text_of(screen, "#par-vram")
        assert after != before and fake_estimate(engine.estimated[-1]).fit_line() in after
        assert "fits 8 GB ✗ · 12 GB ✗ · 16 GB ✗ · 24 GB ✓" in after  # 8 images a step

        field.value = "1"  # back to the first settings: known already, shown at once, nothing estimated
        await pilot.pause()
        assert text_of(screen, "#par-vram") == before and len(engine.estimated) == 2


async def test_a_newer_request_ends_the_older_one_and_its_answer_is_never_shown() -> None:
    ended: list[bool] = []

    class SlowFirst(FakeEngine):
        def estimate_memory(self, profile, stop=None):
            self.estimated.append(profile)
            if profile.training.train_batch_size == 1:  # the screen's first request runs until it is told to stop
                deadline = time.monotonic() + 10
                while not stop() and time.monotonic() < deadline:
                    time.sleep(0.02)
                ended.append(stop())
                return None if stop() else fake_estimate(profile)
            return fake_estimate(profile)

    engine = SlowFirst()
    app = make_app(engine, Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("d")
        await pilot.pause()
        app.goto(3)
        await pilot.pause(0.3)
        screen = app.screen
        assert "estimating" in text_of(screen, "#par-vram")
        screen.query_one(VramLine).delay = 0.1
        async with vram_estimated(pilot):
            screen.query_one("#f-training--train_batch_size", Input).value = "3"
        assert ended == [True]  # the first request was ended, not waited for
        assert [p.training.train_batch_size for p in engine.estimated] == [1, 3]
        assert fake_estimate(engine.estimated[-1]).fit_line() in text_of(screen, "#par-vram")


async def test_settings_with_problems_are_not_estimated() -> None:
    engine = FakeEngine()
    app = make_app(engine, Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await parameters(pilot)
        screen.query_one(VramLine).delay = 0.1
        screen.query_one("#f-training--train_batch_size", Input).value = "many"
        await pilot.pause(0.4)
        await app.workers.wait_for_complete()
        assert "once the problems below are fixed" in text_of(screen, "#par-vram")
        assert len(engine.estimated) == 1


async def test_the_fit_test_shows_the_fit_line_and_the_breakdown_at_80x24() -> None:
    engine = FakeEngine()
    app = make_app(engine, Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await parameters(pilot)
        await pilot.press("ctrl+f")
        await app.workers.wait_for_complete()
        await pilot.pause(0.3)
        expected = fake_estimate(app.session.profile())
        lines = screen_lines(app)
        assert any(expected.fit_line() in line and "VRAM ≈" in line for line in lines), lines
        assert any("0.50 s/step" in line for line in lines)  # the fit test's own result beside it
        result = fit_result(screen)
        assert f"Memory meter (no GPU needed): {expected.fit_line()}" in result
        assert all(part.split()[0] in result for part in expected.breakdown_lines())
        assert engine.calls[-1][0] == "fit_test" and len(engine.estimated) == 1  # the screen's estimate, not a second


class SkippingEngine(FakeEngine):
    """A fit test in fp16 whose loss scaler skips every step: it goes on past the steps asked for, then says so."""

    def fit_test(self, profile, steps: int, emit=None, price_per_hour=None, stop=None):
        import dataclasses

        result = super().fit_test(profile, steps, emit, price_per_hour, stop)
        return dataclasses.replace(result, steps=steps + 2, lacks_optimizer_state=True)


async def test_a_fit_test_whose_steps_fp16_skipped_says_it_waits_and_that_the_peak_lacks_the_state() -> None:
    from dbtui.screens.parameters import FIT_STEPS
    from dbtui.messages import EngineEvent
    from tests.test_gpu_measure import step

    engine = SkippingEngine()
    app = make_app(engine, Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await parameters(pilot)
        screen.on_engine_event(EngineEvent(step(FIT_STEPS + 2, True)))
        assert f"step {FIT_STEPS + 2}, until a step after one fp16's loss scaler took" in text_of(screen, "#par-fit-status")
        await pilot.press("ctrl+f")
        await app.workers.wait_for_complete()
        await pilot.pause(0.3)
        result = fit_result(screen)
        assert "Note: fp16's loss scaler skipped the steps measured" in result and "the peak lacks the optimizer's state" in result


async def test_settings_the_meter_cannot_estimate_say_why_in_the_line_and_the_fit_test() -> None:
    class NoConfigs(FakeEngine):
        def estimate_memory(self, profile, stop=None):
            raise MeterProcessError("the configs of 'someone/model' are neither in the Hugging Face cache nor downloadable here")

    app = make_app(NoConfigs(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await parameters(pilot)
        assert text_of(screen, "#par-vram").startswith("VRAM: not estimated: the configs of 'someone/model'")
        await pilot.press("ctrl+f")
        await app.workers.wait_for_complete()
        await pilot.pause(0.3)
        result = fit_result(screen)
        assert "0.50 s/step" in result and "Memory meter: not available: the configs of 'someone/model'" in result


# -- the presets -----------------------------------------------------------------------------


def test_a_tier_preset_applied_after_another_leaves_no_saver_it_cannot_run_with() -> None:
    for first in TIER_PRESETS:
        for then in TIER_PRESETS:
            session = Session.from_file(ROOT / "profiles" / "sd15-person.toml")
            session.merge(PRESETS[first])
            session.merge(PRESETS[then])
            assert session.validate()[1] == [], (first, then)


def test_every_tier_preset_is_measured_as_it_is_now() -> None:
    from engine.memory.preset_table import load_preset_estimates

    table = load_preset_estimates()
    assert set(table) == set(TIER_PRESETS) and not set(MODIFIERS) & set(table)
    for name, row in table.items():
        assert row.settings == PRESETS[name], f"{name} changed since it was measured: run python bench/memory.py --presets"
        assert row.prior.batch == 2 * row.no_prior.batch
        assert (row.prior_fp16 is not None) == (PRESETS[name].get("precision", {}).get("mixed_precision") == "bf16")


@pytest.mark.parametrize(("name", "kinds"), [("cpu-demo", ("no_prior", "prior")), ("lora", ("no_prior",)),
                                             ("flux-lora-16gb", ("prior_fp16",))])
def test_a_stored_row_is_what_the_meter_says_today(name: str, kinds: tuple[str, ...], tiny_sd1: Path) -> None:
    """Every field, not the demo's peak alone: the rows went without the fields the meter added since (caching_text,
    nf4_saving; flux-lora's caching pass read as not T5's moment) unseen. SD1.5's lora row (about 10 s on an idle
    CPU) catches too a meter change that moves a real architecture's figures and not the tiny model's. Flux's fp16 row
    at 512 px (20 s) kept its previews' batched decode (9.5 GB; 8.6 one at a time) when the SD rows were measured again."""
    from engine.memory import estimate_peak
    from engine.memory.preset_table import TABLE, preset_profile

    row = json.loads(TABLE.read_text(encoding="utf-8"))["presets"][name]
    for kind in kinds:
        stored = row[kind]
        profile = preset_profile(PRESETS[name], row["pretrained"], prior=kind != "no_prior", fp16=kind == "prior_fp16")
        today = estimate_peak(profile, read_pictures=False).to_dict()
        assert set(stored) == set(today), f"{name}: run python bench/memory.py --presets"
        for key, value in today.items():
            if key in ("seconds", "notes"):
                continue
            # Byte counts within 2 % (the weights and the state exact); words and flags exact.
            exact = key in ("weights", "optimizer_state") or not isinstance(value, int) or isinstance(value, bool)
            assert stored[key] == (value if exact else pytest.approx(value, rel=0.02)), (name, kind, key)


CARDS_GB = (6, 8, 10, 12, 16, 20, 24, 40, 48, 80)


@pytest.mark.parametrize("family", ["sd", "sdxl"])
@pytest.mark.parametrize("bf16", [True, False], ids=["bf16", "no-bf16"])
def test_the_preset_the_advice_recommends_fits_the_card_by_the_meter(family: str, bf16: bool) -> None:
    from engine.hardware.machine import Gpu, Hardware, verdict
    from engine.memory.preset_table import load_preset_estimates

    table = load_preset_estimates()
    for card in CARDS_GB:
        mib = card * 1024 - 10  # cards report a little under their nominal size
        sentence, preset = verdict(Hardware(gpus=[Gpu(0, "GPU", mib, None, "8.6" if bf16 else "7.5", bf16)]), family)
        if family == "sdxl" and card < 8:
            continue  # too small for SDXL at all, and the advice says so
        need = table[preset].need(bf16)
        assert need.fits(card), f"{card} GB ({'bf16' if bf16 else 'no bf16'}): {preset} needs {need.card_need / 2**30:.1f} GB"


def test_the_8_and_12_gb_presets_fit_their_cards() -> None:
    from engine.memory.preset_table import load_preset_estimates

    table = load_preset_estimates()
    assert table["lora"].need().fits(8) and table["full-8bit"].need().fits(8)
    assert table["sdxl-lora"].need().fits(8) and table["sdxl-lora"].need().fits(12)


def test_dbtui_hardware_states_each_presets_estimate(tmp_path: Path, capsys) -> None:
    from dbtui.cli import main
    from engine.memory.preset_table import load_preset_estimates

    table = load_preset_estimates()
    assert main(["hardware", "--family", "sdxl", "--output-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    # "fits" heads the column (rows at 80 columns stay whole); each row holds its cards' marks.
    assert any(line.split()[:3] == ["preset", "whole", "run"] and line.split()[-1] == "fits" for line in out.splitlines())
    for name in ("sdxl-lora", "sdxl-full"):
        marks = table[name].need().fit_line().removeprefix("fits ")
        assert any(name in line and marks in line for line in out.splitlines()), out
    assert main(["hardware", "--json", "--family", "sd", "--output-dir", str(tmp_path)]) == 0
    report = json.loads(capsys.readouterr().out)
    lora = report["presets"]["lora"]
    assert lora["card_gb"] == round(table["lora"].need().card_need / 2**30, 2)
    assert lora["run_card_gb"] == round(table["lora"].need().run_need / 2**30, 2)
    assert lora["fits"] == {str(card): table["lora"].need().fits(card) for card in (8, 12, 16, 24)}


def test_dbtui_hardware_states_what_the_whole_run_needs_beside_the_fits(tmp_path: Path, capsys) -> None:
    """The column beside the fits said the steps alone: the lora preset's 3.1 GB, where its previews need 3.7 GB."""
    from dbtui.cli import main
    from engine.memory.preset_table import load_preset_estimates

    need = load_preset_estimates()["lora"].need()
    assert need.sampling_card_need > need.card_need  # else this test proves nothing
    assert main(["hardware", "--family", "sd", "--output-dir", str(tmp_path)]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("lora "))
    assert f"{need.run_need / 2**30:.1f} GB  {need.fit_line().removeprefix('fits ')}" in row


async def test_on_a_gpu_without_bf16_the_wizard_estimates_bf16_settings_as_it_trains_them_in_fp16() -> None:
    """The VRAM line and the fit test's breakdown counted bf16 weights and the fused step, which such a GPU never runs."""
    from dbtui.engine_facade import HardwareReport
    from engine.hardware.machine import Gpu, Hardware

    engine = FakeEngine()
    app = make_app(engine, Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await parameters(pilot)
        app.session.hardware = HardwareReport(Hardware(gpus=[Gpu(0, "T4", 15_000, 15_000, "7.5", False)]), "", "lora")
        app.session.edit("precision.mixed_precision", "bf16")
        screen._validate(estimate_now=True)
        await app.workers.wait_for_complete()
        await pilot.pause()
        asked = engine.estimated[-1]
        assert asked.precision.mixed_precision == "fp16" and not asked.optimizer.fused_backward
        assert app.session.profile().precision.mixed_precision == "bf16"  # the profile itself is as the user set it
        assert "on the card (as fp16 here) · fits" in text_of(screen, "#par-vram")  # its figure is fp16's, and says so
        app.session.hardware = None  # no GPU known: estimated and shown as the profile says
        screen._validate(estimate_now=True)
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "as fp16" not in text_of(screen, "#par-vram") and engine.estimated[-1].precision.mixed_precision == "bf16"
