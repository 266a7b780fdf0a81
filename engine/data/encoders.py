"""Turning images and captions into UNet inputs, at most once when caching.

Latents: each image is resized to cover its bucket and encoded once (and once mirrored when
flipping is on). The VAE's distribution (mean and std) is kept, so every step still draws a
fresh latent sample exactly as uncached training does. Crops happen in latent space, so
random crops work with cached latents too.
Text: with the text encoders frozen, each distinct caption is encoded once, by the model's family.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from engine.data.examples import Example
from engine.data.images import cover_size, load_rgb
from engine.events import Event, PhaseFinished, PhaseProgress, PhaseStarted
from engine.models.family import Family, ImageGeometry, TextEmbeddings, stack_embeddings


def _pixels(example: Example, multiple: int, flip: bool) -> torch.Tensor:
    from PIL import Image, ImageOps

    image = load_rgb(example.path)
    size = cover_size(image.width, image.height, example.bucket, multiple)
    image = image.resize(size, Image.Resampling.BICUBIC)
    if flip:
        image = ImageOps.mirror(image)
    data = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8).reshape(size[1], size[0], 3)
    return data.permute(2, 0, 1).float().div(127.5).sub(1.0)


class LatentSource:
    """VAE latent distributions of the examples, encoded on demand and kept when caching."""

    def __init__(self, vae: Any, examples: list[Example], *, device: torch.device, dtype: torch.dtype, cache: bool, hflip: bool):
        self.vae = vae
        self.examples = examples
        self.device = device
        self.dtype = dtype
        self.cache = cache
        self.flips = (False, True) if hflip else (False,)
        self.scale = 2 ** (len(vae.config.block_out_channels) - 1)
        self.scaling_factor = vae.config.scaling_factor
        self.shift_factor = getattr(vae.config, "shift_factor", None) or 0.0
        self._stored: dict[tuple[int, bool], torch.Tensor] = {}
        self.encode_calls = 0

    @torch.no_grad()
    def _encode(self, index: int) -> dict[bool, torch.Tensor]:
        example = self.examples[index]
        pixels = torch.stack([_pixels(example, self.scale, flip) for flip in self.flips])
        self.encode_calls += 1
        # Uncached latents are encoded inside the training step's autocast; the VAE keeps its own
        # dtype (fp32 where fp16 would overflow), as when caching.
        with torch.autocast(self.device.type, enabled=False):
            params = self.vae.encode(pixels.to(self.device, self.dtype)).latent_dist.parameters
        return {flip: params[i] for i, flip in enumerate(self.flips)}

    def fill(self, emit: Callable[[Event], None], should_stop: Callable[[], bool] = lambda: False) -> None:
        """Encode every example once (both flips when flipping is on)."""
        import time

        started = time.perf_counter()
        emit(PhaseStarted(phase="caching", total=len(self.examples), description="encoding images with the VAE"))
        for index in range(len(self.examples)):
            if should_stop():
                break
            for flip, params in self._encode(index).items():
                self._stored[(index, flip)] = params
            emit(PhaseProgress(phase="caching", done=index + 1, total=len(self.examples)))
        emit(PhaseFinished(phase="caching", seconds=time.perf_counter() - started))

    def params(self, index: int, flip: bool) -> torch.Tensor:
        key = (index, flip and len(self.flips) == 2)
        if key in self._stored:
            return self._stored[key]
        encoded = self._encode(index)
        if self.cache:
            for f, p in encoded.items():
                self._stored[(index, f)] = p
        return encoded[key[1]]

    def sample(self, indexes: tuple[int, ...], flips: list[bool], center: bool, generator: torch.Generator) -> torch.Tensor:
        """A batch of scaled latents: cropped (centre or random) in latent space, then sampled."""
        return self.sample_with_geometry(indexes, flips, center, generator)[0]

    def sample_with_geometry(
        self, indexes: tuple[int, ...], flips: list[bool], center: bool, generator: torch.Generator
    ) -> tuple[torch.Tensor, list[ImageGeometry]]:
        """``sample``, with where each crop came from in pixels (what SDXL conditions on)."""
        out, geometry = [], []
        for index, flip in zip(indexes, flips):
            params = self.params(index, flip)
            example = self.examples[index]
            width, height = example.bucket
            rows, cols = height // self.scale, width // self.scale
            spare_rows, spare_cols = params.shape[1] - rows, params.shape[2] - cols
            if center:
                top, left = spare_rows // 2, spare_cols // 2
            else:
                top = int(torch.randint(0, spare_rows + 1, (1,), generator=generator))
                left = int(torch.randint(0, spare_cols + 1, (1,), generator=generator))
            mean, logvar = params[:, top : top + rows, left : left + cols].float().chunk(2, dim=0)
            std = torch.exp(0.5 * logvar.clamp(-30.0, 20.0))
            noise = torch.randn(mean.shape, generator=generator).to(mean.device)
            out.append((mean + std * noise - self.shift_factor) * self.scaling_factor)
            original = (example.size[1], example.size[0]) if example.size else (height, width)
            geometry.append(ImageGeometry(original, (top * self.scale, left * self.scale), (height, width)))
        return torch.stack(out), geometry

    def release(self) -> None:
        self._stored.clear()


class TextSource:
    """The family's text embeddings for captions (``clip_skip``: 1 = the family's usual layer, 2 = one earlier)."""

    def __init__(self, family: Family, tokenizers: list[Any], text_encoders: list[Any], *, device: torch.device,
                 clip_skip: int, cache: bool):
        self.family = family
        self.tokenizers = tokenizers
        self.text_encoders = text_encoders
        self.device = device
        self.clip_skip = clip_skip
        self.cache = cache
        self._stored: dict[str, TextEmbeddings] = {}
        self.encode_calls = 0

    def encode(self, captions: list[str]) -> TextEmbeddings:
        """Embeddings for the captions; gradients flow when a text encoder trains."""
        self.encode_calls += 1
        return self.family.encode_text(self.tokenizers, self.text_encoders, captions, self.clip_skip, self.device)

    @torch.no_grad()
    def fill(self, captions: list[str]) -> None:
        for caption in sorted(set(captions) - set(self._stored)):
            encoded = self.encode([caption])
            self._stored[caption] = {name: tensor[0] for name, tensor in encoded.items()}

    def get(self, captions: list[str]) -> TextEmbeddings:
        if not self.cache:
            return self.encode(captions)
        missing = [c for c in captions if c not in self._stored]
        if missing:
            self.fill(missing)
        return stack_embeddings([self._stored[c] for c in captions])
