"""Pure helpers of the diffusion loss: noise and the per-sample loss (targets: engine/models/noise_objective.py)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def make_noise(latents: torch.Tensor, generator: torch.Generator, offset: float) -> torch.Tensor:
    """Gaussian noise, plus per-channel offset noise when ``offset`` > 0 (darker darks)."""
    noise = torch.randn(latents.shape, generator=generator).to(latents.device, latents.dtype)
    if offset:
        shape = (latents.shape[0], latents.shape[1], 1, 1)
        noise = noise + offset * torch.randn(shape, generator=generator).to(latents.device, latents.dtype)
    return noise


def per_sample_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(prediction.float(), target.float(), reduction="none").mean(dim=(1, 2, 3))
