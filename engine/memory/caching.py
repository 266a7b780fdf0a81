"""The caching moment before the first step: the VAE and the text encoders on the GPU while the caches fill.

On a first run ``Trainer.setup`` puts the VAE and every text encoder on the device, fills the
latent and text caches (``Trainer._sources``), moves the cached parts off the GPU, and only then
brings the denoiser (``prepare_denoiser``). For that moment the card holds the encoders, plus one
encoding pass; no denoiser, gradients or optimizer state yet. The meter reports it beside the step
(``MemoryEstimate.caching``): for Flux it is T5-XXL's 9 GB in bf16, near the NF4 step's own peak. A
re-run with every caption cached loads no text encoder, so this is the most it can be.
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
    weights: int  # the VAE's and the text encoders' weights and buffers
    encoding: int  # the larger encoding pass's own peak: a caption through the text encoders, or an image through the VAE


def _encoders(model: PreparedModel) -> list[torch.nn.Module]:
    return [model.components.vae, *model.components.text_encoders]


def _peak(model: PreparedModel, encode: Any) -> int:
    parts = [model.components.unet, *_encoders(model)]
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
    weights = storage_bytes([t for m in _encoders(model) for t in [*m.parameters(), *m.buffers()]])
    return CachingMeasure(weights, max(passes))
