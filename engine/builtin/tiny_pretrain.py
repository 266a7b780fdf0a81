"""Pretraining the tiny SD1 model on captioned shapes, so that the demo starts from a model that
draws pictures (not coloured noise) and DreamBooth visibly teaches it the "zwx disc".

Two stages on pictures drawn by engine/builtin/shapes_data.py:
- the VAE learns to reconstruct them, on crops of pictures drawn on the fly;
- the UNet learns to denoise the latents of a fixed set of pictures given their captions, with
  latents and caption embeddings computed once (10 % of captions are dropped, so
  classifier-free guidance has an unconditional prompt to use). The shipped weights are an
  exponential moving average of the UNet's (diffusers' ``EMAModel``), as diffusion models are
  usually sampled from, which smooths out the last steps' noise.

The text encoder keeps its random weights, as SD keeps CLIP frozen: trained from scratch beside
the UNet it collapsed to one embedding for every caption (the UNet then ignored the prompt, and
DreamBooth could not tell "zwx disc" from "a disc"), while a fixed random encoder gives each
caption its own. Deterministic: fixed seeds, a fixed thread count and
``torch.use_deterministic_algorithms``; the same schedule on the same thread count gives
bit-identical weights.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

CAPTION_DROPOUT = 0.1
VAE_CROP = 32
ENCODE_CHUNK = 256


@dataclass(frozen=True)
class Schedule:
    vae_steps: int = 1500
    vae_batch: int = 8
    vae_lr: float = 2e-3
    pictures: int = 8192
    unet_steps: int = 2500
    unet_batch: int = 32
    unet_lr: float = 1e-3
    ema_decay: float = 0.999
    seed: int = 0


@contextlib.contextmanager
def deterministic(threads: int) -> Iterator[None]:
    """One fixed thread count and deterministic kernels, restored afterwards."""
    old_threads, old_mode = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_mode)


def _pixels(images: list[Any]) -> torch.Tensor:
    data = [torch.frombuffer(bytearray(i.tobytes()), dtype=torch.uint8).reshape(i.height, i.width, 3) for i in images]
    return torch.stack(data).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def _batch(rng: random.Random, size: int) -> tuple[torch.Tensor, list[str]]:
    from engine.builtin.shapes_data import draw_example

    pairs = [draw_example(rng) for _ in range(size)]
    return _pixels([image for image, _ in pairs]), [caption for _, caption in pairs]


def _crops(pixels: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """One random ``size`` square of each image: the VAE is convolutional, and crops cost a quarter."""
    top, left = torch.randint(0, pixels.shape[-1] - size + 1, (2,), generator=generator).tolist()
    return pixels[:, :, top : top + size, left : left + size]


def _warmup_cosine(steps: int, warmup: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))

    return factor


def _train_vae(vae: Any, schedule: Schedule, rng: random.Random, generator: torch.Generator, log: Callable[[str], None]) -> None:
    optimizer = torch.optim.AdamW(vae.parameters(), lr=schedule.vae_lr, weight_decay=0.0)
    lr = torch.optim.lr_scheduler.LambdaLR(optimizer, _warmup_cosine(schedule.vae_steps, 20))
    vae.train()
    started = time.perf_counter()
    for step in range(schedule.vae_steps):
        pixels = _crops(_batch(rng, schedule.vae_batch)[0], VAE_CROP, generator)
        posterior = vae.encode(pixels).latent_dist
        reconstruction = vae.decode(posterior.sample(generator)).sample
        # A light KL term, as in SD's VAE: latents stay near unit scale, sampling noise stays small.
        loss = F.mse_loss(reconstruction, pixels) + 1e-6 * posterior.kl().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        lr.step()
        if (step + 1) % 100 == 0 or step + 1 == schedule.vae_steps:
            log(f"vae step {step + 1}/{schedule.vae_steps} loss {loss.item():.4f} ({(time.perf_counter() - started) / (step + 1):.2f} s/step)")
    vae.eval()
    vae.requires_grad_(False)


@torch.no_grad()
def _set_scaling_factor(vae: Any, rng: random.Random) -> None:
    """Scale latents to unit standard deviation, as SD's 0.18215 does for its own VAE."""
    pixels, _ = _batch(rng, 32)
    std = vae.encode(pixels).latent_dist.mean.std().item()
    vae.register_to_config(scaling_factor=round(1.0 / std, 5))


@dataclass(frozen=True)
class _Latents:
    """The VAE's latent distribution of each training picture (a diagonal Gaussian)."""

    mean: torch.Tensor
    std: torch.Tensor

    def sample(self, rows: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        mean = self.mean[rows]
        return mean + self.std[rows] * torch.randn(mean.shape, generator=generator)


@torch.no_grad()
def _encode_pictures(pipe: Any, schedule: Schedule, rng: random.Random) -> tuple[_Latents, torch.Tensor, torch.Tensor]:
    """The UNet's fixed training set, encoded once: the pictures' latents, each distinct caption's
    embedding (the last one is the empty caption's), and the index of each picture's caption."""
    means, stds, captions = [], [], []
    for first in range(0, schedule.pictures, ENCODE_CHUNK):
        pixels, chunk_captions = _batch(rng, min(ENCODE_CHUNK, schedule.pictures - first))
        distribution = pipe.vae.encode(pixels).latent_dist
        means.append(distribution.mean)
        stds.append(distribution.std)
        captions += chunk_captions
    unique = sorted(set(captions))
    tokenizer = pipe.tokenizer
    ids = tokenizer([*unique, ""], padding="max_length", max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt").input_ids
    embeddings = torch.cat([pipe.text_encoder(ids[i : i + ENCODE_CHUNK])[0] for i in range(0, len(ids), ENCODE_CHUNK)])
    index = {caption: i for i, caption in enumerate(unique)}
    return _Latents(torch.cat(means), torch.cat(stds)), embeddings, torch.tensor([index[c] for c in captions])


def _train_unet(pipe: Any, schedule: Schedule, rng: random.Random, generator: torch.Generator, log: Callable[[str], None]) -> None:
    from diffusers.training_utils import EMAModel

    from engine.models.noise_objective import min_snr_weights

    unet, scheduler = pipe.unet, pipe.scheduler
    pipe.text_encoder.eval()
    pipe.text_encoder.requires_grad_(False)
    latents, embeddings, caption_of = _encode_pictures(pipe, schedule, rng)
    empty = len(embeddings) - 1
    scale = pipe.vae.config.scaling_factor
    optimizer = torch.optim.AdamW(unet.parameters(), lr=schedule.unet_lr, weight_decay=1e-2)
    lr = torch.optim.lr_scheduler.LambdaLR(optimizer, _warmup_cosine(schedule.unet_steps, 50))
    ema = EMAModel(unet.parameters(), decay=schedule.ema_decay, use_ema_warmup=True, power=0.75)
    unet.train()
    started = time.perf_counter()
    for step in range(schedule.unet_steps):
        rows = torch.randint(0, schedule.pictures, (schedule.unet_batch,), generator=generator)
        clean = latents.sample(rows, generator) * scale
        captions = caption_of[rows].masked_fill(torch.rand(len(rows), generator=generator) < CAPTION_DROPOUT, empty)
        noise = torch.randn(clean.shape, generator=generator)
        timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (len(rows),), generator=generator)
        prediction = unet(scheduler.add_noise(clean, noise, timesteps), timesteps, embeddings[captions]).sample
        # Min-SNR weighting: the usual way to converge faster (Hang et al. 2023).
        losses = F.mse_loss(prediction, noise, reduction="none").mean(dim=(1, 2, 3))
        loss = (losses * min_snr_weights(scheduler, timesteps, 5.0)).mean()
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        optimizer.step()
        lr.step()
        ema.step(unet.parameters())
        if (step + 1) % 100 == 0 or step + 1 == schedule.unet_steps:
            log(f"unet step {step + 1}/{schedule.unet_steps} loss {losses.mean().item():.4f} ({(time.perf_counter() - started) / (step + 1):.2f} s/step)")
    ema.copy_to(unet.parameters())
    unet.eval()


def pretrain(schedule: Schedule = Schedule(), threads: int = 1, log: Callable[[str], None] = lambda _: None) -> Any:
    """The tiny SD1 pipeline, pretrained on shapes under ``schedule``."""
    from engine.builtin.tiny_model import build_pipeline
    from engine.builtin.tiny_weights import ARCHITECTURE

    with deterministic(threads):
        pipe = build_pipeline("tiny", "sd1", seed=schedule.seed, **ARCHITECTURE)
        rng = random.Random(schedule.seed)
        generator = torch.Generator().manual_seed(schedule.seed)
        _train_vae(pipe.vae, schedule, rng, generator, log)
        _set_scaling_factor(pipe.vae, rng)
        _train_unet(pipe, schedule, rng, generator, log)
    return pipe
