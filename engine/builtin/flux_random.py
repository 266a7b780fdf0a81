"""Flux.1 [dev]'s real architecture with random weights: ``builtin:flux-random``.

For GPU benchmarks (bench/suite.py --model flux), which cannot download the gated 34 GB model:
Flux.1 [dev]'s published configs (engine/memory/flux_architecture.py: the 12 B-parameter
transformer, CLIP-L, T5-XXL and the 16-channel VAE), so memory and time per step match the real
model. T5 reads with the tiny Flux's character tokenizer (engine/builtin/tiny_flux.py): the
vocabulary is not shipped, and prompts are padded to 512 tokens either way. 17 B parameters are
made in bf16, on the GPU when it has room (seconds; a CPU needs minutes and 34 GB of RAM), and
saved in bf16: about 34 GB of disk.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.convert.older_readers import write_for_older_readers

RESOLUTION = 1024
BF16_BYTES = 16_870_000_000 * 2  # transformer, T5-XXL, CLIP-L and VAE


def build_flux_random_pipeline(seed: int = 0) -> Any:
    """A ``FluxPipeline`` of Flux.1 [dev]'s size with random weights, made on torch's current default
    device and dtype (under ``torch.device("meta")`` it takes no memory)."""
    import torch
    from diffusers import FluxPipeline

    from engine.builtin.clip_tokenizer import clip_tokenizer
    from engine.builtin.tiny_flux import t5_tokenizer
    from engine.memory.flux_architecture import flux_architecture

    torch.manual_seed(seed)
    parts = flux_architecture("dev").build()
    clip, t5 = parts.text_encoders
    return FluxPipeline(scheduler=parts.scheduler, vae=parts.vae, text_encoder=clip, tokenizer=clip_tokenizer(),
                        text_encoder_2=t5, tokenizer_2=t5_tokenizer(), transformer=parts.unet)


def save_flux_random(folder: Path, seed: int = 0) -> Path:
    """Save the random-weight Flux.1 [dev] as a diffusers folder in bf16; returns the folder."""
    import torch

    from engine.builtin.build_device import build_device

    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with build_device(BF16_BYTES) as device, torch.device(device):
            build_flux_random_pipeline(seed).save_pretrained(folder)
    finally:
        torch.set_default_dtype(previous)
    write_for_older_readers(folder)
    return Path(folder)
