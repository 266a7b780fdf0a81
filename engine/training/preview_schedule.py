"""Which steps make a preview round on schedule: the one rule the trainer follows and that the best step's advice
(engine/runs/keep.py) reads back, to tell a round asked for by hand from a scheduled one. Torch-free: the UI's process
reads it."""

from __future__ import annotations


def preview_scheduled(step: int, total_steps: int, sampling_every: int | None, saving_every: int | None) -> bool:
    """Whether step ``step`` makes a preview round on schedule: every sampling.every_n_steps (or, unset, every
    saving.every_n_steps), before the last step (whose round the end of the run makes)."""
    every = sampling_every or saving_every
    return bool(every) and step % every == 0 and step < total_steps
