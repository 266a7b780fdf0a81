"""The benchmark suite reads bench_train.py's measures and never drops a configuration that failed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench_helpers import bench_module


@pytest.fixture(scope="module")
def suite():
    yield from bench_module("suite")


@pytest.fixture(scope="module")
def bench_train():
    yield from bench_module("bench_train")


def test_measures_are_read_and_a_failed_configuration_stays_in_the_table(suite) -> None:
    output = "config: model=sd15 steps=30\n--- run\nmedian_s_per_step: 0.412\npeak_vram_allocated_mb: 7012.500\nnot_a_measure: 3\n"
    measures = suite.parse_measures(output)
    assert measures == {"median_s_per_step": 0.412, "peak_vram_allocated_mb": 7012.5}
    text = suite.table([("lora-8gb", measures, ""), ("full-fp16", {}, "OutOfMemoryError: CUDA out of memory")])
    header, rule, ok, failed = text.splitlines()
    assert header == "| configuration | VRAM alloc MB | s/step |" and rule == "|---|---|---|"
    assert ok == "| lora-8gb | 7012.50 | 0.41 |"
    assert failed.startswith("| full-fp16 | failed: OutOfMemoryError: CUDA out of memory |")


def test_a_configuration_that_cannot_run_reports_its_error(suite, tmp_path: Path) -> None:
    measures, error = suite.run_config("tiny", ["--optimizer", "sgd"], tmp_path, steps=5)
    assert measures == {} and "optimizer.name: takes 'adamw'" in error


def test_the_meter_error_is_shown_where_a_gpu_measured_what_it_estimates(suite) -> None:
    on_gpu = {"step_peak_vram_allocated_mb": 4000.0, "meter_step_mb": 4400.0,
              "caching_peak_vram_allocated_mb": 2000.0, "meter_caching_mb": 1900.0, "median_s_per_step": 0.2}
    on_cpu = {"meter_step_mb": 4400.0, "meter_caching_mb": 1900.0, "median_s_per_step": 3.0}
    header, _, gpu, cpu = suite.table([("lora-8gb", on_gpu, ""), ("full-fp16", on_cpu, "")]).splitlines()
    columns = [c.strip() for c in header.strip("|").split("|")]
    assert columns[-2:] == ["meter steps error", "meter caching error"]
    gpu_cells = dict(zip(columns, (c.strip() for c in gpu.strip("|").split("|"))))
    cpu_cells = dict(zip(columns, (c.strip() for c in cpu.strip("|").split("|"))))
    assert (gpu_cells["meter steps error"], gpu_cells["meter caching error"]) == ("+10.0%", "-5.0%")
    assert (cpu_cells["meter steps error"], cpu_cells["meter caching error"]) == ("", "")  # nothing measured to compare
    assert cpu_cells["meter steps MB"] == "4400.00"


def test_bench_train_gives_the_meters_figures_for_its_profile(bench_train, tmp_path: Path) -> None:
    args = bench_train.parse_args(["--model", "tiny", "--meter", "--class-images", "2"])
    figures = bench_train.meter(bench_train.profile_for(args, tmp_path))
    assert set(figures) == {"meter_step_mb", "meter_caching_mb"}
    assert figures["meter_step_mb"] > 0 and figures["meter_caching_mb"] > 0


def test_each_row_says_it_is_running_before_its_minutes_of_work(suite, monkeypatch, capsys) -> None:
    monkeypatch.setattr(suite, "run_config", lambda *args: ({}, "stopped here"))
    assert suite.main(["--model", "tiny", "--steps", "5"]) == 1
    lines = capsys.readouterr().out.splitlines()
    first = next(name for name in suite.configs_for("tiny"))
    assert lines[0] == f"[1/{len(suite.configs_for('tiny'))}] {first}: running 5 steps of tiny …"
    assert lines[1] == f"{first}: failed: stopped here"


@pytest.mark.parametrize(("model", "row"), [("sd15", "full-bf16-savers"), ("sdxl", "sdxl-full-savers")])
def test_the_savers_rows_train_with_bf16_weights_and_the_fused_step(suite, bench_train, tmp_path: Path, model: str,
                                                                    row: str) -> None:
    args = bench_train.parse_args(["--model", model, *suite.configs_for(model)[row]])
    profile = bench_train.profile_for(args, tmp_path)
    assert (profile.precision.mixed_precision, profile.precision.bf16_weights, profile.optimizer.fused_backward) == (
        "bf16", True, True)
    plain = bench_train.profile_for(bench_train.parse_args(["--model", model, "--precision", "bf16"]), tmp_path)
    assert (plain.precision.bf16_weights, plain.optimizer.fused_backward) == (False, False)


def test_a_step_count_that_leaves_no_step_timed_is_refused(bench_train, capsys) -> None:
    """`bench_train.py --steps 2` printed median_s_per_step: nan: its first four steps are start-up and warm-up."""
    with pytest.raises(SystemExit) as refused:
        bench_train.parse_args(["--steps", "4"])
    assert refused.value.code == 2
    assert "--steps 4 leaves no step to time" in (said := capsys.readouterr().err) and "--steps 5 or more" in said
    assert bench_train.parse_args(["--steps", "5"]).steps == 5
    assert bench_train.median_step_seconds([10.0, 11.0, 12.0, 13.0, 15.5]) == 2.5  # the fifth step's time alone


def test_the_suite_refuses_a_step_count_that_leaves_no_step_timed_before_any_row(suite, monkeypatch, capsys) -> None:
    """`suite.py --steps 2` started every row, each refused by bench_train.py: a table of failed rows, one per
    configuration, where bench_train.py and compare_reference.py refuse the count at once."""
    rows = []
    monkeypatch.setattr(suite, "run_config", lambda *args: rows.append(args) or ({}, ""))
    with pytest.raises(SystemExit) as refused:
        suite.main(["--model", "tiny", "--steps", "4"])
    assert refused.value.code == 2 and rows == []
    said = capsys.readouterr()
    assert "--steps 4 leaves no step to time" in said.err and "--steps 5 or more" in said.err
    assert "running" not in said.out
