"""The reference comparison reads train_dreambooth.py's progress bars and times a child on its own."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.bench_helpers import bench_module


@pytest.fixture(scope="module")
def compare():
    yield from bench_module("compare_reference")


def test_reference_phases_come_from_its_progress_bars(compare):
    lines = [(11.0, "Generating class images:   0%|          | 0/2 [00:00<?, ?it/s]"),
             (40.0, "Generating class images: 100%|██████████| 2/2 [00:29<00:00, 14.50s/it]"),
             (41.0, "Steps:   0%|          | 0/6 [00:00<?, ?it/s]")]
    lines += [(42.0 + n * (1.0 if n < 4 else 2.0), f"Steps: {n * 16}%|█  | {n}/6 [00:0{n}<00:05, 1.0it/s, loss=0.1]")
              for n in range(1, 7)]
    phases = compare.parse_reference_log(lines)
    assert phases["start_to_first_step_s"] == 43.0
    assert phases["class_generation_s"] == 29.0
    assert phases["median_s_per_step"] == 2.0  # the first three gaps are warm-up
    assert phases["last_step_s"] == 54.0


def test_a_log_without_steps_is_an_error(compare):
    with pytest.raises(ValueError, match="no training step"):
        compare.parse_reference_log([(1.0, "Traceback (most recent call last):")])


def test_run_timed_splits_carriage_returns_and_measures_only_its_child(compare):
    # tqdm style: a redraw is a carriage return then the bar, ended only by the next redraw.
    program = ("import sys, time\n"
               "sys.stderr.write('\\rbar 1'); sys.stderr.flush(); time.sleep(0.5)\n"
               "sys.stderr.write('\\rbar 2\\n'); sys.stderr.flush()\n"
               "buffer = bytearray(64 * 2**20); time.sleep(0.2)\n"
               "print('done')\n")
    parent_ballast = b"x" * (300 * 2**20)  # resident in this process, must not count as the child's
    timed = compare.run_timed([sys.executable, "-c", program], env={})
    del parent_ballast
    assert [text for _, text in timed.lines] == ["bar 1", "bar 2", "done"]
    (bar_1, _), (bar_2, _), _ = timed.lines
    assert bar_1 < 0.5 <= bar_2 <= timed.wall_s
    assert 64 < timed.peak_rss_mb < 200
    assert timed.returncode == 0


def test_bench_output_is_read_back(compare):
    text = "config: model=tiny steps=30\n--- run\nmedian_s_per_step: 0.850\nLoading weights: 100%|███| 36/36\npeak_rss_mb: 674.000\n"
    assert compare.parse_key_values(text) == {"median_s_per_step": 0.85, "peak_rss_mb": 674.0}
