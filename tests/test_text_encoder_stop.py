"""The rule of when the text encoder stops training, at its edges (the trainer, a resume and its warnings follow it:
tests/test_resume_changes.py checks that they agree)."""

from __future__ import annotations

import pytest

from engine.training.text_encoder_stop import text_encoder_last_step, text_encoder_trains_at


@pytest.mark.parametrize(("fraction", "total_steps", "last"), [
    (0.28, 25, 7),  # 7.000000000000001 in float arithmetic: step 8 trained it too
    (0.07, 100, 7), (0.14, 50, 7), (0.56, 50, 28),  # more products a float multiplication puts over the integer
    (0.7, 10, 7), (0.5, 16, 8), (0.5, 15, 8), (0.1, 3, 1),  # exact products, and a step begun is trained to its end
    (1.0, 10, 10), (1.0, 1, 1), (0.3, 1, 1), (1e-9, 1000, 1),
    (0.0, 10, 0)])  # a fraction the profile refuses (it must be over 0): no step trains it
def test_the_text_encoders_last_step_is_the_fraction_as_written_of_the_total_rounded_up(
        fraction: float, total_steps: int, last: int) -> None:
    assert text_encoder_last_step(fraction, total_steps) == last
    assert [step for step in range(1, total_steps + 2) if text_encoder_trains_at(step, fraction, total_steps)] == \
        list(range(1, last + 1))
