"""What the GPU checks of the memory meter rest on, tried without a GPU: the fit test waits for fp16's
loss scaler to take a step, the caching pass runs without cuDNN's benchmark, and bench/memory.py
--measure trains each row's profile as it is estimated."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from engine.events import StepEnded
from engine.runs.fit import MAX_EXTRA_STEPS, measure, measured_enough
from engine.training.precision import without_conv_benchmark
from tests.bench_helpers import bench_module


def step(n: int, skipped: bool) -> StepEnded:
    return StepEnded(time=float(n), step=n, total_steps=100, epoch=0, loss=0.1, smoothed_loss=0.1, lr=1e-5, it_per_s=1.0,
                     eta_s=1.0, vram_allocated_peak_mb=1000.0 + n, optimizer_skipped=skipped)


def test_the_fit_test_goes_on_until_a_step_is_measured_after_one_taken() -> None:
    skipped_three = [step(n, n <= 3) for n in range(1, 7)]
    # Steps 1-3 skipped, 4 taken (its optimizer makes the state at its end): step 5 is the first with the state throughout.
    assert [measured_enough(skipped_three[:n], 2) for n in range(1, 7)] == [False, False, False, False, True, True]
    assert measured_enough([step(1, False), step(2, False)], 2)
    assert not measured_enough([step(1, False)], 2)  # the steps asked for come first


def test_a_loss_scaler_that_never_takes_a_step_stops_the_test_and_is_said() -> None:
    events = [step(n, True) for n in range(1, 2 + MAX_EXTRA_STEPS)]
    assert not measured_enough(events, 2)
    events.append(step(len(events) + 1, True))
    assert measured_enough(events, 2)
    assert measure(events, setup_s=1.0).no_step_taken
    assert not measure([step(1, True), step(2, False)], setup_s=1.0).no_step_taken


def test_the_fit_command_says_when_the_peak_lacks_the_optimizers_state(monkeypatch, capsys, tmp_path) -> None:
    import dataclasses

    from dbtui.cli import cmd_fit
    from engine.runs import fit

    all_skipped = measure([step(1, True), step(2, True)], setup_s=1.0)
    monkeypatch.setattr(fit, "fit_test", lambda *a, **k: all_skipped)
    monkeypatch.setattr(cmd_fit, "_estimate", lambda profile: None)
    profile = tmp_path / "p.toml"
    profile.write_text((Path(__file__).parents[1] / "profiles" / "tiny-demo.toml").read_text())
    args = cmd_fit.argparse.Namespace(profile=str(profile), steps=2, price_per_hour=None, estimate_only=False,
                                      set=[f'saving.output_dir="{tmp_path / "runs"}"'])
    assert cmd_fit._fit(args) == 0
    assert "fp16's loss scaler skipped all 2 steps" in capsys.readouterr().out
    monkeypatch.setattr(fit, "fit_test", lambda *a, **k: dataclasses.replace(all_skipped, no_step_taken=False))
    assert cmd_fit._fit(args) == 0
    assert "loss scaler" not in capsys.readouterr().out


def test_the_caching_pass_runs_without_cudnns_benchmark_and_restores_it() -> None:
    before = torch.backends.cudnn.benchmark
    try:
        torch.backends.cudnn.benchmark = True
        with without_conv_benchmark():
            assert torch.backends.cudnn.benchmark is False
        assert torch.backends.cudnn.benchmark is True
        with pytest.raises(RuntimeError), without_conv_benchmark():
            raise RuntimeError("a failed pass")
        assert torch.backends.cudnn.benchmark is True
    finally:
        torch.backends.cudnn.benchmark = before


@pytest.fixture(scope="module")
def memory_bench():
    yield from bench_module("memory")


def test_each_row_measured_on_a_gpu_is_a_valid_trainable_profile(memory_bench, tmp_path) -> None:
    from engine.profile import load_profile

    for row in memory_bench.ROWS:
        overrides = [f'model.pretrained="{row.pretrained}"', *row.overrides, *memory_bench.gpu_overrides(row, tmp_path)]
        profile = load_profile(memory_bench.ROOT / "profiles" / row.profile, overrides)
        assert profile.concepts[0].instance_dir == "builtin:demo-instance"
        assert profile.model.pretrained == (row.measured_on or row.pretrained)
        if profile.prior.enabled:
            assert (profile.concepts[0].num_class_images, profile.prior.steps) == (2, 2)
    assert {row.measured_on for row in memory_bench.ROWS if row.model.startswith("Flux")} == {"builtin:flux-random"}


def test_measure_refuses_without_a_gpu(memory_bench, capsys) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: --measure would train")
    assert memory_bench.main(["--measure", "--only", "3"]) == 2
    assert "CUDA GPU" in capsys.readouterr().err


def test_the_random_weight_flux_is_estimated_from_its_configs_without_being_built(monkeypatch) -> None:
    import engine.builtin as builtin
    from engine.memory.architecture import architecture_of

    monkeypatch.setattr(builtin, "resolve_model", lambda name: pytest.fail(f"{name} was built"))
    assert architecture_of("builtin:flux-random").family.id == "flux"


def test_a_built_in_model_is_made_before_the_measure_starts(memory_bench, monkeypatch) -> None:
    import engine.builtin as builtin

    built = []
    monkeypatch.setattr(builtin, "resolve_model", built.append)
    memory_bench.built_before("builtin:sdxl-random")
    memory_bench.built_before("black-forest-labs/FLUX.1-dev")  # not a built-in: nothing to make
    assert built == ["builtin:sdxl-random"]
