"""Whether a VAE given as ``model.vae`` makes the latents the model's denoiser takes: an SD or SDXL VAE (4 latent
channels) on a Flux model (16) loads, then fails at the first encode with a matrix-shape error."""

from __future__ import annotations

from typing import Any

from engine.models.family import Family


def vae_misfit(vae_latent_channels: int, denoiser: Any, family: Family, vae: str, key: str = "model.vae") -> str | None:
    """What to say of model.vae (or convert's ``key`` --vae) ``vae`` whose latents ``denoiser`` does not take; None
    where they fit."""
    takes = family.latent_channels(denoiser)
    if vae_latent_channels == takes:
        return None
    return (f"{key}'s VAE ({vae}) makes latents of {vae_latent_channels} channels, where {family.label}'s "
            f"{family.denoiser_name} takes {takes}: give a VAE made for {family.label}, or none (the model's own)")
