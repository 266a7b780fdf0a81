"""The space check before the first checkpoint estimates its size from the optimizer's state. Prodigy keeps p0 as one
value for a weight that starts at zero (LoRA's B matrices); the estimate counted it in full, about a ninth too large
for a LoRA run, so a checkpoint that would have fitted a nearly full disk was skipped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from engine.runs.checkpoints import _estimate_bytes
from engine.runs.folder import RunFolder
from engine.runs.in_process import train
from tests.training_helpers import tiny_profile


def _held_state_bytes(optimizer: Any) -> int:
    """The bytes of the tensors the optimizer holds (each once: a shared one is saved once)."""
    tensors = {id(value): value for state in optimizer.state.values() for value in state.values()
               if isinstance(value, torch.Tensor)}
    return sum(value.numel() * value.element_size() for value in tensors.values())


@pytest.mark.parametrize("optimizer", ["prodigy", "adamw"])
def test_a_lora_runs_first_estimate_counts_the_state_its_optimizer_holds(tmp_path: Path, optimizer: str) -> None:
    seen: list[tuple[int, int]] = []

    def measure(trainer: Any, step: int) -> None:
        if step == 1:  # after the first step, as before any checkpoint: the optimizer's state is made
            weights = sum(p.numel() * p.element_size() for p in trainer.unet_params + trainer.text_params)
            seen.append((_estimate_bytes(trainer, RunFolder(tmp_path / "none")) - weights,
                         _held_state_bytes(trainer.optimizer)))

    profile = tiny_profile(tmp_path, training={"method": "lora", "max_train_steps": 1}, optimizer={"name": optimizer})
    train(profile, tmp_path / "run", step_hooks=[measure])
    [(estimated, held)] = seen
    assert estimated == held
