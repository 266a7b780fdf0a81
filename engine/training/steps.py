"""One optimizer step of the trainer, and the DreamBooth loss it takes the gradients of.

The functions read the trainer's state (models, optimizer, caches, generator) and call ``trainer.loss`` for
each micro-batch, so a test or a hook that replaces it is followed.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import torch

from engine.data.batches import Batch
from engine.models.family import embeddings_to
from engine.training.losses import make_noise, per_sample_loss

if TYPE_CHECKING:
    from engine.training.trainer import Trainer


def optimizer_step(trainer: Trainer, micro_batches: list[Batch]) -> float:
    """Backward over each micro-batch (gradients all-reduced only after the last), clip, step; the mean loss,
    over every process."""
    accelerator = trainer.accelerator
    models = [trainer.unet] + (trainer.trained_text_encoders if trainer.train_text_encoder else [])
    total = 0.0
    for i, batch in enumerate(micro_batches):
        last = i == len(micro_batches) - 1
        sync = contextlib.ExitStack()
        if not last and accelerator.num_processes > 1:
            for model in models:
                sync.enter_context(accelerator.no_sync(model))
        with sync:
            with accelerator.autocast():
                loss = trainer.loss(batch) / len(micro_batches)
            # Outside autocast, as torch's AMP guide advises: each backward operation runs in its forward's
            # dtype anyway, and nothing autocast made lives on through the backward pass (with its cache of
            # weight copies on, SD1.5's full fine-tune without checkpointing peaked 1.5 GB higher on an H200).
            accelerator.backward(loss)
        total += loss.detach().item()
    if accelerator.num_processes > 1:
        # Each process saw its own batch: report the mean over all, so the loss shown is the
        # whole step's and a NaN on any one process stops every process at the same step.
        total = accelerator.reduce(torch.tensor(total, device=trainer.device), reduction="mean").item()
    max_norm = trainer.profile.optimizer.max_grad_norm
    if max_norm > 0 and not trainer.fused_backward:
        params = trainer.unet_params + (trainer.text_params if trainer.train_text_encoder else [])
        accelerator.clip_grad_norm_(params, max_norm)
    # With the fused step every weight stepped (each clipped on its own) in the backward pass
    # already: this step is empty, and the LR scheduler still counts it.
    trainer.optimizer.step()
    trainer.lr_scheduler.step()
    trainer.optimizer.zero_grad(set_to_none=True)
    return total


def batch_loss(trainer: Trainer, batch: Batch) -> torch.Tensor:
    """Instance loss + prior_loss_weight × class loss for one batch."""
    if not batch.classes:
        return per_sample_losses(trainer, batch.instance).mean()
    weight = trainer.profile.prior.loss_weight
    buckets = {trainer.examples[i].bucket for i in batch.instance + batch.classes}
    if len(buckets) == 1:
        # Same shape: one UNet pass over instance and class images together.
        losses = per_sample_losses(trainer, batch.instance + batch.classes)
        n = len(batch.instance)
        return losses[:n].mean() + weight * losses[n:].mean()
    return per_sample_losses(trainer, batch.instance).mean() + weight * per_sample_losses(trainer, batch.classes).mean()


def per_sample_losses(trainer: Trainer, indexes: tuple[int, ...]) -> torch.Tensor:
    """Each image's loss: its latents (flipped and cropped as the profile says) noised at a timestep of its own."""
    profile = trainer.profile
    generator = trainer.generator
    hflip = profile.dataset.hflip
    flips = [bool(torch.rand(1, generator=generator) < 0.5) if hflip else False for _ in indexes]
    latents, geometry = trainer.latents.sample_with_geometry(indexes, flips, profile.dataset.center_crop, generator)
    latents = latents.to(trainer.device)
    noise = make_noise(latents, generator, profile.training.noise_offset)
    timesteps = trainer.objective.sample_timesteps(latents, generator).to(trainer.device)
    noisy = trainer.objective.noisy(latents, noise, timesteps)
    captions = [trainer.examples[i].caption for i in indexes]
    if trainer.train_text_encoder:
        text = trainer.texts.encode(captions)
    else:
        with torch.no_grad():
            text = trainer.texts.get(captions)
    prediction = trainer.components.family.denoise(trainer.unet, noisy, timesteps, embeddings_to(text, trainer.device),
                                                   geometry, training=profile.training)
    losses = per_sample_loss(prediction, trainer.objective.target(latents, noise, timesteps))
    weights = trainer.objective.loss_weights(timesteps)
    if weights is not None:
        losses = losses * weights.to(losses.device)
    if profile.training.min_snr_gamma:
        losses = losses * trainer.objective.min_snr_weights(timesteps, profile.training.min_snr_gamma).to(losses.device)
    return losses
