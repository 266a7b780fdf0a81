"""What the GPU checks of the memory meter rest on, tried without a GPU: the fit test waits for fp16's
loss scaler to take a step, the caching pass runs without cuDNN's benchmark, and bench/memory.py
--measure trains each row's profile as it is estimated."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from dbtui.cli import build_parser
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
    assert measure(events, setup_s=1.0).lacks_optimizer_state
    # Only the last step taken: its backward pass ran without the state.
    assert measure([step(1, True), step(2, False)], setup_s=1.0).lacks_optimizer_state
    assert not measure([step(1, False), step(2, True)], setup_s=1.0).lacks_optimizer_state


def test_the_speed_comes_from_the_steps_taken_where_there_are_some() -> None:
    def at(n: int, seconds: float, skipped: bool) -> StepEnded:
        return StepEnded(time=seconds, step=n, total_steps=100, epoch=0, loss=0.1, smoothed_loss=0.1, lr=1e-5, it_per_s=1.0,
                         eta_s=1.0, optimizer_skipped=skipped)

    # Skipped steps took 0.1 s; the first step taken 2.0 s (it made the optimizer's state), the next ones 0.5 s.
    # The median of all gaps would say 0.1, and of all steps taken 0.5 only by luck of the count.
    times = [(0.0, True), (0.1, True), (0.2, True), (0.3, True), (2.3, False), (2.8, False), (3.3, False)]
    events = [at(n, t, skipped) for n, (t, skipped) in enumerate(times, 1)]
    assert measure(events, setup_s=1.0).s_per_step == pytest.approx(0.5)
    assert measure(events[:6], setup_s=1.0).s_per_step == pytest.approx(0.1)  # one taken past the first: all gaps count


def test_the_fit_command_says_when_the_peak_lacks_the_optimizers_state(monkeypatch, capsys, tmp_path) -> None:
    import dataclasses

    from dbtui.cli import cmd_fit
    from engine.runs import fit

    all_skipped = measure([step(1, True), step(2, True)], setup_s=1.0)
    monkeypatch.setattr(fit, "fit_test", lambda *a, **k: all_skipped)
    monkeypatch.setattr(cmd_fit, "_estimate", lambda profile, cards, say=print: None)
    profile = tmp_path / "p.toml"
    profile.write_text((Path(__file__).parents[1] / "profiles" / "tiny-demo.toml").read_text())
    args = build_parser().parse_args(["fit", str(profile), "--steps", "2", "--set", f'saving.output_dir="{tmp_path / "runs"}"'])
    assert cmd_fit._fit(args) == 0
    assert "fp16's loss scaler skipped the steps measured" in capsys.readouterr().out
    monkeypatch.setattr(fit, "fit_test", lambda *a, **k: dataclasses.replace(all_skipped, lacks_optimizer_state=False))
    assert cmd_fit._fit(args) == 0
    assert "loss scaler" not in capsys.readouterr().out


def test_the_fit_command_measures_a_short_run_to_its_step_before_last_and_prints_warnings(monkeypatch, capsys,
                                                                                          tmp_path) -> None:
    from dbtui.cli import cmd_fit
    from engine.events import Warning
    from engine.runs import fit

    asked = []

    def fake_fit_test(profile, steps, emit, **kwargs):
        asked.append(steps)
        emit(Warning(message="fp16's loss scaler skipped the last 20 optimizer steps", advice="use bf16"))
        return measure([step(1, False), step(2, False)], setup_s=1.0)

    monkeypatch.setattr(fit, "fit_test", fake_fit_test)
    monkeypatch.setattr(cmd_fit, "_estimate", lambda profile, cards, say=print: None)
    profile = tmp_path / "p.toml"
    profile.write_text((Path(__file__).parents[1] / "profiles" / "tiny-demo.toml").read_text())

    def fit_of(run_steps: int, steps: int = 10) -> str:
        args = build_parser().parse_args(["fit", str(profile), "--steps", str(steps), "--set", f'saving.output_dir="{tmp_path / "runs"}"',
                                          "--set", f"training.max_train_steps={run_steps}"])
        assert cmd_fit._fit(args) == 0
        return capsys.readouterr().out

    out = fit_of(10)
    assert asked[-1] == 9 and "the run has only 10 steps: the fit test measures the first 9" in out
    assert "warning: fp16's loss scaler skipped the last 20 optimizer steps — use bf16" in out
    out = fit_of(1)
    assert "the run has 1 step: the fit test trains it whole" in out and "fit test: 1 step of" in out  # not "10 steps"
    out = fit_of(2)
    assert "measures its first step (the last" in out and "fit test: 1 step of" in out
    out = fit_of(40)
    assert asked[-1] == 10 and "the run has" not in out and "fit test: 10 steps of" in out
    out = fit_of(40, steps=1)  # two at least: the speed is a gap between steps
    assert "fit test: 2 steps of" in out and "--steps 1: the fit test measures 2, the fewest" in out
    assert "--steps" not in fit_of(40, steps=2)


def test_the_large_built_ins_are_made_where_build_device_says(monkeypatch, tmp_path) -> None:
    import contextlib

    import engine.builtin.build_device as build_device
    from engine.builtin import flux_random, sdxl_random

    asked = []

    @contextlib.contextmanager
    def on_cpu(weight_bytes):
        asked.append(weight_bytes)
        yield "cpu"

    class Saved:
        def save_pretrained(self, folder):
            asked.append(torch.empty(0).device.type)  # the device the build ran under

    monkeypatch.setattr(build_device, "build_device", on_cpu)
    monkeypatch.setattr(sdxl_random, "build_sdxl_random_pipeline", lambda seed: Saved())
    monkeypatch.setattr(flux_random, "build_flux_random_pipeline", lambda seed: Saved())
    sdxl_random.save_sdxl_random(tmp_path / "sdxl")
    flux_random.save_flux_random(tmp_path / "flux")
    assert asked == [sdxl_random.FP32_BYTES, "cpu", flux_random.BF16_BYTES, "cpu"]


def test_class_images_and_the_caching_pass_run_without_cudnns_benchmark_and_a_short_run_is_not_exported(tmp_path) -> None:
    """On a CPU too the flag is set and read: benchmark off from class images to the caching pass's end, on for the
    steps. The run has 3 steps and the test asks for 10: it stops before the last, so nothing is exported."""
    from engine.events import Event, PhaseProgress, RunFinished
    from engine.runs.fit import fit_test
    from tests.training_helpers import tiny_profile

    seen: dict[str, set[bool]] = {}
    kinds: list[Event] = []

    def record(event: Event) -> None:
        kinds.append(event)
        moment = event.phase if isinstance(event, PhaseProgress) else event.kind
        seen.setdefault(moment, set()).add(torch.backends.cudnn.benchmark)

    profile = tiny_profile(tmp_path, training={"max_train_steps": 3},
                           concepts=[{"instance_dir": "builtin:demo-instance", "instance_prompt": "photo of zwx disc",
                                      "class_dir": str(tmp_path / "class"), "class_prompt": "photo of a disc",
                                      "num_class_images": 2}],
                           prior={"enabled": True, "steps": 2, "sample_batch_size": 2})
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True  # as configure_gpu_maths sets it on a GPU
    try:
        result = fit_test(profile, 10, record, work_dir=tmp_path)
    finally:
        torch.backends.cudnn.benchmark = before
    assert seen["class_images"] == {False} and seen["caching"] == {False} and seen["step_ended"] == {True}
    assert result.steps == 2 and result.total_steps == 3
    finished = [e for e in kinds if isinstance(e, RunFinished)]
    assert finished[-1].status == "stopped" and not any(getattr(e, "phase", "") == "export" for e in kinds)


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


def test_a_built_in_model_is_made_before_the_measure_starts(memory_bench, monkeypatch, tmp_path, capsys) -> None:
    import engine.builtin as builtin
    from engine.runs import fit

    order = []
    monkeypatch.setattr(builtin, "resolve_model", lambda name: order.append(("built", name)))
    monkeypatch.setattr(fit, "fit_test", lambda profile, steps, **kwargs: order.append(
        ("measured", profile.model.pretrained, profile.precision.gradient_checkpointing))
                        or measure([step(1, False), step(2, False)], setup_s=1.0))
    assert memory_bench.train_row(3, tmp_path, ["precision.gradient_checkpointing=false"]) == 0  # SDXL LoRA, --set
    assert order == [("built", "builtin:sdxl-random"), ("measured", "builtin:sdxl-random", False)]
    order.clear()
    memory_bench.built_before("black-forest-labs/FLUX.1-dev")  # not a built-in: nothing to make
    assert order == []
    assert capsys.readouterr().out.startswith(memory_bench.RESULT)


def test_only_takes_the_tables_rows_alone(memory_bench) -> None:
    assert memory_bench.row_number("1") == 1 and memory_bench.row_number(str(len(memory_bench.ROWS))) == len(memory_bench.ROWS)
    for wrong in ("0", str(len(memory_bench.ROWS) + 1), "-1", "x"):
        with pytest.raises(SystemExit):
            memory_bench.main(["--measure", "--only", wrong])


@pytest.mark.parametrize(("free_gb", "device"), [(40, "cuda"), (14, "cpu")])
def test_a_large_built_in_is_made_on_the_gpu_only_when_it_has_room(monkeypatch, free_gb: int, device: str) -> None:
    from engine.builtin.build_device import build_device
    from engine.builtin.sdxl_random import FP32_BYTES

    emptied = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda *a: (free_gb * 2**30, 80 * 2**30))
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: emptied.append(True))
    with build_device(FP32_BYTES) as chosen:  # SDXL's 13.9 GB in fp32: a 16 GB card with 14 GB free builds on the CPU
        assert chosen == device
    assert emptied == ([True] if device == "cuda" else [])


def test_the_built_ins_sizes_are_their_models(monkeypatch) -> None:
    from engine.builtin.clip_tokenizer import clip_tokenizer
    from engine.builtin.flux_random import BF16_BYTES
    from engine.builtin.sdxl_random import FP32_BYTES, build_models
    from engine.memory.flux_architecture import flux_architecture

    with torch.device("meta"):
        sdxl = sum(p.numel() for m in build_models(clip_tokenizer()).values() for p in m.parameters())
        parts = flux_architecture("dev").build()
    flux = sum(p.numel() for m in [parts.unet, parts.vae, *parts.text_encoders] for p in m.parameters())
    assert FP32_BYTES == pytest.approx(sdxl * 4, rel=0.001) and BF16_BYTES == pytest.approx(flux * 2, rel=0.001)


def test_the_fit_test_trains_no_previews_scoring_rounds_or_checkpoints() -> None:
    from engine.profile import load_profile
    from engine.runs.fit import fit_profile

    demo = load_profile(Path(__file__).parents[1] / "profiles" / "tiny-demo.toml")
    assert demo.evaluation.enabled and demo.sampling.num_images  # what the fit test turns off
    fitted = fit_profile(demo)
    assert not fitted.evaluation.enabled and fitted.sampling.num_images == 0 and fitted.saving.every_n_steps is None


def test_a_set_line_is_checked_before_any_row_trains(memory_bench, monkeypatch, capsys) -> None:
    import subprocess

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(subprocess, "run", lambda *args, **kwargs: pytest.fail("a row trained"))
    assert memory_bench.measure_rows([0, 1], ["precision.nonsense=1"]) == 2
    assert "precision.nonsense" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        memory_bench.main(["--set", "precision.gradient_checkpointing=false"])  # without --measure


def test_only_picks_the_rows_of_the_table_too(memory_bench, monkeypatch, capsys) -> None:
    """`python3 bench/memory.py --only 3` measured all eight rows (about ten minutes on a CPU): --only was read by
    --measure alone."""
    measured = []
    monkeypatch.setattr(memory_bench, "measure", lambda row, extra=None: measured.append(row) or {"row": row.profile})
    assert memory_bench.main(["--only", "3", "--only", "1", "--json"]) == 0
    assert measured == [memory_bench.ROWS[2], memory_bench.ROWS[0]]
    assert capsys.readouterr().out.splitlines() == ['{"row": "sd15-lora-8gb.toml"}', '{"row": "sd15-person.toml"}']
    with pytest.raises(SystemExit):
        memory_bench.main(["--presets", "--only", "3"])


def test_only_takes_a_row_asked_twice_once(memory_bench, monkeypatch) -> None:
    """`python3 bench/memory.py --only 3 --only 3` measured row 3 twice (a minute each on a CPU, a training with
    --measure) and printed it twice in the table."""
    measured, trained = [], []
    monkeypatch.setattr(memory_bench, "measure", lambda row, extra=None: measured.append(row) or {"row": row.profile})
    monkeypatch.setattr(memory_bench, "measure_rows", lambda rows, sets: trained.append(rows) or 0)
    assert memory_bench.main(["--only", "3", "--only", "1", "--only", "3", "--json"]) == 0
    assert measured == [memory_bench.ROWS[2], memory_bench.ROWS[0]]
    assert memory_bench.main(["--measure", "--only", "3", "--only", "3"]) == 0
    assert trained == [[2]]
