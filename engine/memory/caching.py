"""The caching moment before the first step: the VAE and the text encoders on the GPU while the caches fill.

On a first run ``Trainer.setup`` puts the VAE (and text encoders that train) on the device and fills
the latent cache; then frozen text encoders load beside the VAE and fill the text cache
(``Trainer._sources``, ``TextEncodersOnDemand``). The cached parts leave the GPU, and only then
comes the denoiser (``prepare_denoiser``). So the card holds, at the larger of those two moments,
the encoders there and one encoding pass; no denoiser, gradients or optimizer state yet. The meter
reports it beside the step (``MemoryEstimate.caching``): for Flux it is T5-XXL's 9 GB in bf16, near
the NF4 step's own peak. A re-run with every caption cached loads no text encoder, so this is the
most it can be. (Counting every encoder beside the VAE's 1024 px pass, the meter was 70 % over
SDXL's caching pass on an H200.)
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
    weights: int  # the weights and buffers of the encoders on the device at the caching pass's peak
    encoding: int  # that moment's encoding pass's own peak: a caption through the text encoders, or an image through the VAE
    text: bool = False  # the text encoders' moment, which no training setting shrinks (not the VAE's, which resolution does)


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
    vae = components.vae
    vae_bytes = storage_bytes([*vae.parameters(), *vae.buffers()])
    text_bytes = storage_bytes([t for m in components.text_encoders for t in [*m.parameters(), *m.buffers()]])
    moments = []
    if profile.dataset.cache_latents:
        # LatentSource encodes a picture and its mirror image together, whole: the largest one decides.
        images = 2 if profile.dataset.hflip else 1

        def encode_image() -> None:
            with torch.no_grad(), torch.autocast(DEVICE.type, enabled=False):
                vae.encode(torch.zeros(images, 3, *shape.encode, dtype=vae.dtype, device=DEVICE))

        # Frozen text encoders are not loaded yet; those that train are on the device already.
        moments.append(CachingMeasure(vae_bytes + (0 if text_cached else text_bytes), _peak(model, encode_image)))
    if text_cached:
        moments.append(CachingMeasure(vae_bytes + text_bytes, _peak(model, lambda: cached_text(model, profile.training.clip_skip)),
                                      text=True))
    return max(moments, key=lambda moment: moment.weights + moment.encoding)
