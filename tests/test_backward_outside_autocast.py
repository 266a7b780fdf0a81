"""The trainer's backward pass runs outside autocast, so autocast's cache of half-precision copies of
the fp32 weights is gone before it (torch's AMP guide advises so; on an H200, SD1.5's full fine-tune
without gradient checkpointing peaked 1.5 GB lower). The gradients are the same either way."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from engine.training.trainer import Trainer
from tests.training_helpers import tiny_profile


def _one_step_gradients(trainer: Trainer, backward_inside: bool) -> list[torch.Tensor]:
    batch = trainer.batches_for(0)[0]
    trainer.generator.manual_seed(0)  # the same noise and timesteps each time
    with trainer.accelerator.autocast():
        loss = trainer.loss(batch)
        if backward_inside:
            trainer.accelerator.backward(loss)
    if not backward_inside:
        trainer.accelerator.backward(loss)
    grads = [p.grad.clone() for p in trainer.unet_params]
    for param in trainer.unet_params:
        param.grad = None
    return grads


def test_the_trainer_runs_the_backward_pass_outside_autocast_and_the_gradients_are_the_same(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from accelerate import Accelerator

    # A CPU trains in fp32 (engine/training/precision.py); accelerate autocasts to bf16 on a CPU too.
    monkeypatch.setattr("engine.training.trainer.effective_precision", lambda requested: (requested, None))
    profile = tiny_profile(tmp_path, training={"max_train_steps": 1}, precision={"mixed_precision": "bf16"})
    trainer = Trainer(profile, tmp_path / "run")
    trainer.setup()
    assert {p.dtype for p in trainer.unet_params} == {torch.float32}  # trained in fp32 under bf16 autocast
    inside = _one_step_gradients(trainer, backward_inside=True)
    outside = _one_step_gradients(trainer, backward_inside=False)
    assert all(torch.equal(a, b) for a, b in zip(inside, outside))

    seen: dict[str, bool] = {}
    loss = trainer.loss
    backward = Accelerator.backward

    def watched_loss(batch):
        seen["loss"] = torch.is_autocast_enabled("cpu")
        return loss(batch)

    def watched_backward(self, value, **kwargs):
        seen["backward"] = torch.is_autocast_enabled("cpu")
        return backward(self, value, **kwargs)

    monkeypatch.setattr(trainer, "loss", watched_loss)
    monkeypatch.setattr(Accelerator, "backward", watched_backward)
    trainer.train()
    assert seen == {"loss": True, "backward": False}
    trainer.end()
