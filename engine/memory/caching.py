"""The caching moment before the first step: every part on the GPU while the caches fill.

``Trainer.__init__`` sets the models up on the device (``prepare_models``: the denoiser with its
LoRA, every text encoder, the VAE), then fills the latent and text caches (``Trainer._sources``),
and only then moves the cached parts off the GPU. For that moment the card holds every part at
once, plus one encoding pass; there are no gradients and no optimizer state yet. The meter reports
it beside the step (``MemoryEstimate.caching``): for Flux it holds more than the step, since
T5-XXL alone takes 9 GB in bf16.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from engine.memory.fake_models import DEVICE, PreparedModel
from engine.memory.live_bytes import LiveBytes, storage_bytes
from engine.memory.step import StepShape, cached_text


@dataclass(frozen=True)
class CachingMeasure:
    weights: int  # every part's weights and buffers
    encoding: int  # the larger encoding pass's own peak: a caption through the text encoders, or an image through the VAE


def _peak(model: PreparedModel, encode: Any) -> int:
    parts = [model.components.unet, model.components.vae, *model.components.text_encoders]
    with LiveBytes({id(p.untyped_storage()) for m in parts for p in m.parameters()}) as tracker:
        encode()
    return tracker.peak


def measure_caching(model: PreparedModel, profile: Any, shape: StepShape) -> CachingMeasure | None:
    """The caching moment of ``profile``, or None when nothing is cached (inside the fake mode)."""
    components = model.components
    text_cached = not profile.training.train_text_encoder
    if not text_cached and not profile.dataset.cache_latents:
        return None
    passes = [0]
    if text_cached:
        passes.append(_peak(model, lambda: cached_text(model, profile.training.clip_skip)))
    if profile.dataset.cache_latents:
        vae = components.vae
        images = 2 if profile.dataset.hflip else 1  # LatentSource encodes an image and its mirror image together

        def encode_image() -> None:
            with torch.no_grad(), torch.autocast(DEVICE.type, enabled=False):
                vae.encode(torch.zeros(images, 3, shape.height, shape.width, dtype=vae.dtype, device=DEVICE))

        passes.append(_peak(model, encode_image))
    parts = [components.unet, components.vae, *components.text_encoders]
    weights = storage_bytes([t for m in parts for t in [*m.parameters(), *m.buffers()]])
    return CachingMeasure(weights, max(passes))
