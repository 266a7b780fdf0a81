"""Helpers for training tests: tiny profiles and fixed-noise prediction probes."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch

from engine.profile import Profile, validate_data


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def tiny_profile(tmp_path: Path, **sections: Any) -> Profile:
    """A fast CPU profile on the tiny model and demo images; sections override parts."""
    base = {
        "name": "t",
        "model": {"pretrained": "builtin:tiny-sd1"},
        "concepts": [{"instance_dir": "builtin:demo-instance", "instance_prompt": "photo of zwx disc"}],
        "dataset": {"resolution": 64},
        "training": {"method": "full", "max_train_steps": 6, "seed": 7},
        "optimizer": {"learning_rate": 1e-4},
        "precision": {"mixed_precision": "no", "gradient_checkpointing": False},
        "sampling": {"num_images": 0},
        "saving": {"output_dir": str(tmp_path / "runs"), "every_n_steps": 1000},
    }
    return validate_data(merge(base, sections))


def image_latents(vae: Any, paths: list[Path], resolution: int) -> torch.Tensor:
    from PIL import Image

    images = []
    for path in paths:
        image = Image.open(path).convert("RGB").resize((resolution, resolution))
        data = torch.tensor(list(image.getdata()), dtype=torch.float32).reshape(resolution, resolution, 3)
        images.append(data.permute(2, 0, 1) / 127.5 - 1)
    with torch.no_grad():
        return vae.encode(torch.stack(images)).latent_dist.mean * vae.config.scaling_factor


@torch.no_grad()
def predictions(model_dir: Path, latents: torch.Tensor, prompt: str, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(UNet noise predictions, the noise) on fixed noise and timesteps for ``prompt``."""
    from diffusers import DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    unet = UNet2DConditionModel.from_pretrained(model_dir, subfolder="unet").eval()
    text_encoder = CLIPTextModel.from_pretrained(model_dir, subfolder="text_encoder").eval()
    tokenizer = CLIPTokenizer.from_pretrained(model_dir, subfolder="tokenizer")
    scheduler = DDPMScheduler.from_pretrained(model_dir, subfolder="scheduler")
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(latents.shape, generator=generator)
    timesteps = torch.linspace(50, 900, latents.shape[0]).long()
    ids = tokenizer([prompt] * latents.shape[0], padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
    hidden = text_encoder(ids)[0]
    noisy = scheduler.add_noise(latents, noise, timesteps)
    return unet(noisy, timesteps, hidden).sample, noise
