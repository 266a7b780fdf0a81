"""fp16's loss scaler skipping optimizer steps: each step event says so, and a long run of skips is warned of,
since the loss goes on looking normal while the weights no longer move. A CPU never skips, so accelerate's
flag is played by a stand-in."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.events import StepEnded, Warning
from engine.training.watchdogs import SkippedSteps
from tests.training_helpers import tiny_profile


def test_twenty_skips_in_a_row_are_warned_of_once_and_a_step_taken_starts_the_count_again() -> None:
    watch = SkippedSteps()
    said = [watch.after(step, True) for step in range(1, 20)]
    assert said == [None] * 19
    assert watch.after(20, False) is None  # taken: the count starts again
    said = [watch.after(step, True) for step in range(21, 61)]
    warnings = [w for w in said if w is not None]
    assert len(warnings) == 1 and "skipped the last 20 optimizer steps (to step 40)" in warnings[0].message
    assert "bf16" in warnings[0].advice


def test_a_run_whose_every_step_is_skipped_says_so_in_its_events(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from accelerate import Accelerator

    from engine.runs.in_process import train

    monkeypatch.setattr(Accelerator, "optimizer_step_was_skipped", property(lambda self: True))
    events = []
    train(tiny_profile(tmp_path, training={"max_train_steps": 21}), tmp_path / "run", sinks=[events.append])
    steps = [e for e in events if isinstance(e, StepEnded)]
    assert len(steps) == 21 and all(e.optimizer_skipped for e in steps)
    warned = [e for e in events if isinstance(e, Warning) and "loss scaler" in e.message]
    assert len(warned) == 1 and "to step 20" in warned[0].message
