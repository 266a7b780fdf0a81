"""One training step of the denoiser (and the text encoders when they train), counted by ``LiveBytes``.

It follows ``per_sample_losses`` and ``optimizer_step`` (engine/training/steps.py): latents (encoded by the
VAE inside the step when they are not cached), noise, timesteps, text embeddings (the cached
ones stacked, or encoded with gradients), the family's denoiser and the per-sample loss under
autocast as accelerate applies it (caching no weight copies), then the backward pass outside autocast
as the trainer runs it.
Inputs are fake tensors of the step's shapes; what they hold does not change what is allocated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from engine.memory.cuda_autocast import cuda_autocast_rules
from engine.memory.fake_models import DEVICE, PreparedModel
from engine.memory.live_bytes import LiveBytes, storage_bytes
from engine.models.family import ImageGeometry, TextEmbeddings, stack_embeddings
from engine.training.losses import make_noise, per_sample_loss


@dataclass(frozen=True)
class StepShape:
    batch: int  # images per UNet pass
    instances: int  # of which instance images (the rest are class images)
    height: int  # pixels
    width: int
    # The largest picture as the VAE encodes it (engine/memory/pictures.py); by default the step's own size.
    encode_height: int = 0
    encode_width: int = 0

    @property
    def encode(self) -> tuple[int, int]:
        """(height, width) of the VAE's encode."""
        return self.encode_height or self.height, self.encode_width or self.width


@dataclass(frozen=True)
class StepMeasure:
    peak: int  # bytes the step itself held at its peak (on top of what existed before it)
    gradients_at_peak: int  # of which new gradients
    weight_copies_at_peak: int  # of which autocast's half-precision copies of weights
    gradients: int  # every trainable parameter's gradient after the backward pass


def cached_text(model: PreparedModel, clip_skip: int) -> TextEmbeddings:
    """One caption's embeddings as the trainer caches them (encoded without gradients, outside autocast)."""
    components = model.components
    with torch.no_grad():
        encoded = components.family.encode_text(components.tokenizers, components.text_encoders, [""], clip_skip, DEVICE)
    return {name: tensor[0] for name, tensor in encoded.items()}


def _latents(model: PreparedModel, profile: Any, shape: StepShape) -> torch.Tensor:
    vae = model.components.vae
    scale = model.components.vae_scale_factor
    if not profile.dataset.cache_latents:
        # The trainer encodes one picture at a time, whole (for random crops), in the VAE's own dtype.
        pixels = torch.zeros(1, 3, *shape.encode, dtype=vae.dtype)
        with torch.no_grad(), torch.autocast(DEVICE.type, enabled=False):
            encoded = vae.encode(pixels).latent_dist.parameters  # mean and log-variance
        channels = encoded.shape[1] // 2
    else:
        channels = vae.config.latent_channels
    return torch.zeros(shape.batch, channels, shape.height // scale, shape.width // scale)


def _loss(model: PreparedModel, profile: Any, shape: StepShape, text_cache: TextEmbeddings | None) -> torch.Tensor:
    components = model.components
    family = components.family
    generator = torch.Generator().manual_seed(0)
    latents = _latents(model, profile, shape)
    noise = make_noise(latents, generator, profile.training.noise_offset)
    objective = family.objective(components.noise_scheduler)
    timesteps = torch.zeros(shape.batch, dtype=torch.long)
    noisy = objective.noisy(latents, noise, timesteps)
    if text_cache is None:
        text = family.encode_text(components.tokenizers, components.text_encoders, [""] * shape.batch,
                                  profile.training.clip_skip, DEVICE)
    else:
        with torch.no_grad():
            text = stack_embeddings([text_cache] * shape.batch)
    geometry = [ImageGeometry((shape.height, shape.width), (0, 0), (shape.height, shape.width))] * shape.batch
    prediction = family.denoise(components.unet, noisy, timesteps, text, geometry)
    losses = per_sample_loss(prediction, objective.target(latents, noise, timesteps))
    if profile.training.min_snr_gamma:
        losses = losses * objective.min_snr_weights(timesteps, profile.training.min_snr_gamma)
    if shape.instances == shape.batch:
        return losses.mean()
    return losses[: shape.instances].mean() + profile.prior.loss_weight * losses[shape.instances :].mean()


def measure_step(model: PreparedModel, profile: Any, shape: StepShape, text_cache: TextEmbeddings | None, *,
                 free_gradients: bool = False) -> StepMeasure:
    """Count one forward and backward pass (of fake tensors: inside their ``FakeTensorMode``).

    ``free_gradients``: each gradient is dropped as soon as it is complete, as the optimizer step
    fused into the backward pass does once it has used it.
    """
    parts = [model.components.unet, model.components.vae, *model.components.text_encoders]
    weights = {id(p.untyped_storage()) for m in parts for p in m.parameters()}
    autocast_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(profile.precision.mixed_precision)
    trainable = model.trainable
    before = {id(p): p.grad for p in trainable}
    hooks = [p.register_post_accumulate_grad_hook(lambda p: setattr(p, "grad", None)) for p in trainable] if free_gradients else []
    with LiveBytes(weights) as tracker, cuda_autocast_rules(autocast_dtype):
        # Without autocast's cache of weight copies, and the backward pass outside autocast, as the trainer runs
        # them (engine/training/accelerator.py, engine/training/steps.py).
        with torch.autocast(DEVICE.type, dtype=autocast_dtype, enabled=autocast_dtype is not None, cache_enabled=False):
            loss = _loss(model, profile, shape, text_cache)
        loss.backward()
        at_peak = sum(tracker.alive_at_peak(p.grad) for p in trainable if p.grad is not None and p.grad is not before[id(p)])
    for hook in hooks:
        hook.remove()
    gradients = storage_bytes([p.grad for p in trainable if p.grad is not None])
    return StepMeasure(tracker.peak, at_peak, tracker.copies_at_peak, gradients)


def largest_bucket(buckets: list[tuple[int, int]]) -> tuple[int, int]:
    """The (width, height) bucket with the most pixels (the first such): where a step holds the most."""
    return max(buckets, key=lambda b: b[0] * b[1])
