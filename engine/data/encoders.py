"""Turning images and captions into UNet inputs, at most once when caching.

Latents: each image is resized to cover its bucket and encoded once (and once mirrored when
flipping is on). The VAE's distribution (mean and std) is kept, so every step still draws a
fresh latent sample exactly as uncached training does. Crops happen in latent space, so
random crops work with cached latents too.
Text: with the text encoder frozen, each distinct caption is encoded once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from engine.data.examples import Example
from engine.data.images import cover_size, load_rgb
from engine.events import Event, PhaseFinished, PhaseProgress, PhaseStarted


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
        out = []
        for index, flip in zip(indexes, flips):
            params = self.params(index, flip)
            width, height = self.examples[index].bucket
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
        return torch.stack(out)

    def release(self) -> None:
        self._stored.clear()


class TextSource:
    """Text-encoder hidden states for captions (``clip_skip``: 1 = last layer, 2 = penultimate)."""

    def __init__(self, tokenizer: Any, text_encoder: Any, *, device: torch.device, clip_skip: int, cache: bool):
        self.tokenizer = tokenizer
        self.text_encoder = text_encoder
        self.device = device
        self.clip_skip = clip_skip
        self.cache = cache
        self._stored: dict[str, torch.Tensor] = {}
        self.encode_calls = 0

    def encode(self, captions: list[str]) -> torch.Tensor:
        """Hidden states for the captions; gradients flow when the text encoder trains."""
        self.encode_calls += 1
        return encode_text(self.tokenizer, self.text_encoder, captions, self.clip_skip, self.device)

    @torch.no_grad()
    def fill(self, captions: list[str]) -> None:
        for caption in sorted(set(captions) - set(self._stored)):
            self._stored[caption] = self.encode([caption])[0]

    def get(self, captions: list[str]) -> torch.Tensor:
        if not self.cache:
            return self.encode(captions)
        missing = [c for c in captions if c not in self._stored]
        if missing:
            self.fill(missing)
        return torch.stack([self._stored[c] for c in captions])


def encode_text(tokenizer: Any, text_encoder: Any, captions: list[str], clip_skip: int, device: torch.device) -> torch.Tensor:
    """CLIP hidden states for ``captions``: the last layer, or the ``clip_skip``-th from the end
    passed through the final layer norm (as diffusers does; written here because its own
    ``clip_skip`` path fails under transformers 5, whose CLIPTextModel has no ``text_model``)."""
    ids = tokenizer(captions, padding="max_length", max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt").input_ids
    ids = ids.to(device)
    if clip_skip == 1:
        return text_encoder(ids)[0]
    hidden = text_encoder(ids, output_hidden_states=True).hidden_states[-clip_skip]
    encoder = getattr(text_encoder, "module", text_encoder)
    return getattr(encoder, "text_model", encoder).final_layer_norm(hidden)
