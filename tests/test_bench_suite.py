"""The benchmark suite reads bench_train.py's measures and never drops a configuration that failed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench_helpers import bench_module


@pytest.fixture(scope="module")
def suite():
    yield from bench_module("suite")


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
    measures, error = suite.run_config("tiny", ["--optimizer", "sgd"], tmp_path, steps=1)
    assert measures == {} and "optimizer.name: Input should be" in error
