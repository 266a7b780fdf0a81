"""When the text encoder stops training: the one rule that the trainer's steps, a resume from a checkpoint and the
resume's warnings (engine/runs/resume_changes.py) all follow, so that they cannot disagree. Torch-free: the UI's
process reads it."""

from __future__ import annotations

import math
from decimal import Decimal


def text_encoder_last_step(fraction: float, total_steps: int) -> int:
    """The last step (counted from 1) of ``total_steps`` that trains the text encoder under
    training.text_encoder_stop_fraction = ``fraction``: the fraction as written times the total, rounded up. In
    float arithmetic 0.28 of 25 is 7.000000000000001, which trained step 8 too; 0 (which a profile refuses) trains none."""
    return math.ceil(Decimal(str(fraction)) * total_steps)


def text_encoder_trains_at(step: int, fraction: float, total_steps: int) -> bool:
    """Whether step ``step`` (counted from 1) of ``total_steps`` trains the text encoder: the trainer stops it after a
    step where the next one does not, and a resume from step ``step`` stops it at once where step ``step + 1`` does not."""
    return step <= text_encoder_last_step(fraction, total_steps)
