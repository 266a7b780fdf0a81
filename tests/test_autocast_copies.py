"""The trainer's backward pass runs outside autocast, and autocast caches no half-precision copies of
the fp32 weights: each goes once used (torch's AMP guide advises the first; on an H200, SD1.5's full
fine-tune without gradient checkpointing peaked 1.5 GB lower so). The gradients are the same either
way, and the meter counts the step as the trainer runs it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from engine.memory import estimate_peak
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
        seen["caches weight copies"] = torch.is_autocast_cache_enabled()
        return loss(batch)

    def watched_backward(self, value, **kwargs):
        seen["backward"] = torch.is_autocast_enabled("cpu")
        return backward(self, value, **kwargs)

    monkeypatch.setattr(trainer, "loss", watched_loss)
    monkeypatch.setattr(Accelerator, "backward", watched_backward)
    try:
        trainer.train()
        assert seen == {"loss": True, "caches weight copies": False, "backward": False}
        with trainer.half_precision():  # previews and class images
            assert torch.is_autocast_enabled("cpu") and not torch.is_autocast_cache_enabled()
    finally:
        trainer.end()


def _copies(pretrained: str) -> int:
    """Bytes of half-precision copies of every weight autocast casts in the model's UNet."""
    from diffusers import UNet2DConditionModel

    from engine.builtin import resolve_model

    unet = UNet2DConditionModel.from_pretrained(resolve_model(pretrained), subfolder="unet")
    return 2 * sum(p.numel() for m in unet.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)) for p in m.parameters(recurse=False))


def test_the_meter_holds_no_cached_weight_copies_in_a_checkpointed_step_that_peaks_early(tmp_path: Path) -> None:
    """sdxl-person.toml's case: fp32 weights under bf16 autocast, gradient checkpointing, and the fused step
    (no full set of gradients, so the peak comes early in the backward pass). With autocast's cache every
    copy lived to the forward pass's end: 16.8 GB for that profile, 12.5 without."""
    profile = tiny_profile(tmp_path, precision={"mixed_precision": "bf16", "gradient_checkpointing": True},
                           optimizer={"fused_backward": True})
    assert 0 <= estimate_peak(profile).autocast_weight_copies < _copies("builtin:tiny-sd1") / 4


def test_the_meters_previews_of_a_full_fine_tune_hold_no_cached_weight_copies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the cache, a generation held a copy of every trained fp32 weight: the sdxl-full preset's previews
    needed 18.5 GB on the card, 13.3 without."""
    import engine.memory.meter as meter
    from engine.memory.sampling import measure_sampling

    seen = []
    monkeypatch.setattr(meter, "measure_sampling", lambda *args: seen.append(measure_sampling(*args)) or seen[-1])
    estimate_peak(tiny_profile(tmp_path, precision={"mixed_precision": "bf16"}, sampling={"num_images": 1, "every_n_steps": 2}))
    [sampling] = seen
    assert 0 < sampling.generation < _copies("builtin:tiny-sd1") / 1.5  # with the cache: the copies and more
