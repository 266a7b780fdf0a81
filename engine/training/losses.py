"""Pure helpers of the diffusion loss: targets, noise, SNR weighting."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F


def make_noise(latents: torch.Tensor, generator: torch.Generator, offset: float) -> torch.Tensor:
    """Gaussian noise, plus per-channel offset noise when ``offset`` > 0 (darker darks)."""
    noise = torch.randn(latents.shape, generator=generator).to(latents.device, latents.dtype)
    if offset:
        shape = (latents.shape[0], latents.shape[1], 1, 1)
        noise = noise + offset * torch.randn(shape, generator=generator).to(latents.device, latents.dtype)
    return noise


def target_for(scheduler: Any, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
    """What the UNet should predict: the noise (epsilon) or the velocity (v-prediction)."""
    kind = scheduler.config.prediction_type
    if kind == "epsilon":
        return noise
    if kind == "v_prediction":
        return scheduler.get_velocity(latents, noise, timesteps)
    raise ValueError(f"prediction type '{kind}' is not supported; use an epsilon or v-prediction model")


def per_sample_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(prediction.float(), target.float(), reduction="none").mean(dim=(1, 2, 3))


def min_snr_weights(scheduler: Any, timesteps: torch.Tensor, gamma: float) -> torch.Tensor:
    """Min-SNR-γ weights (Hang et al. 2023), for epsilon and v-prediction targets."""
    from diffusers.training_utils import compute_snr

    snr = compute_snr(scheduler, timesteps)
    clipped = torch.clamp(snr, max=gamma)
    if scheduler.config.prediction_type == "v_prediction":
        return clipped / (snr + 1)
    return clipped / snr
