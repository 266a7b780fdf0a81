"""Whether a VAE given as ``model.vae`` makes the latents the model's denoiser takes: an SD or SDXL VAE (4 latent
channels) on a Flux model (16) loads, then fails at the first encode with a matrix-shape error."""

from __future__ import annotations

from typing import Any

from engine.models.family import Family


def latent_channels_taken(denoiser_config: Any, family: Family) -> int:
    """The latent channels ``family``'s denoiser (its diffusers config) takes."""
    if family.id == "flux":
        return int(denoiser_config.in_channels) // 4  # Flux packs 2x2 latent patches into one token
    return int(denoiser_config.out_channels)  # an inpainting UNet takes more in (mask, image) but denoises these


def vae_misfit(vae_latent_channels: int, denoiser_config: Any, family: Family, vae: str) -> str | None:
    """What to say of model.vae ``vae`` whose latents the denoiser does not take; None where they fit."""
    takes = latent_channels_taken(denoiser_config, family)
    if vae_latent_channels == takes:
        return None
    return (f"model.vae's VAE ({vae}) makes latents of {vae_latent_channels} channels, where {family.label}'s "
            f"{family.denoiser_name} takes {takes}: give a VAE made for {family.label}, or none (the model's own)")
