"""The denoising objective of SD1/SD2/SDXL: a DDPM noise schedule; predict the noise or the velocity.

Flow-matching families (Flux) bring their own objective (engine/models/flow_objective.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any


if TYPE_CHECKING:
    import torch


def target_for(scheduler: Any, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
    """What the UNet should predict: the noise (epsilon) or the velocity (v-prediction)."""
    kind = scheduler.config.prediction_type
    if kind == "epsilon":
        return noise
    if kind == "v_prediction":
        return scheduler.get_velocity(latents, noise, timesteps)
    raise ValueError(f"prediction type '{kind}' is not supported; use an epsilon or v-prediction model")


def min_snr_weights(scheduler: Any, timesteps: torch.Tensor, gamma: float) -> torch.Tensor:
    """Min-SNR-γ weights (Hang et al. 2023), for epsilon and v-prediction targets."""
    import torch
    from diffusers.training_utils import compute_snr

    snr = compute_snr(scheduler, timesteps)
    clipped = torch.clamp(snr, max=gamma)
    if scheduler.config.prediction_type == "v_prediction":
        return clipped / (snr + 1)
    # A zero-terminal-SNR schedule (rescale_betas_zero_snr) ends at SNR 0, where min(SNR, γ)/SNR is 0/0: its limit, 1.
    return torch.where(snr > 0, clipped / snr, torch.ones_like(snr))


class NoiseObjective:
    """Uniform timesteps over the schedule; the scheduler adds the noise."""

    def __init__(self, scheduler: Any):
        self.scheduler = scheduler

    def sample_timesteps(self, latents: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        import torch

        return torch.randint(0, self.scheduler.config.num_train_timesteps, (latents.shape[0],), generator=generator)

    def noisy(self, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        return self.scheduler.add_noise(latents, noise, timesteps)

    def target(self, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        return target_for(self.scheduler, latents, noise, timesteps)

    def min_snr_weights(self, timesteps: torch.Tensor, gamma: float) -> torch.Tensor:
        return min_snr_weights(self.scheduler, timesteps, gamma)

    def loss_weights(self, timesteps: torch.Tensor) -> torch.Tensor | None:
        return None  # min-SNR, when asked for, is the trainer's to apply


def flow_settings_refusals(profile: Any, label: str) -> list[tuple[str, str]]:
    """[training.flow] means nothing to a DDPM-schedule model: say so rather than ignore it."""
    if profile.training.flow is None:
        return []
    return [("training.flow", f"[training.flow] is for flow-matching models (Flux); {label} models train on a noise "
                              "schedule: remove [training.flow] from the profile")]


def multistep_sampler(training_scheduler: Any) -> Any:
    """DPM-Solver++ with the training schedule's settings: good previews in few steps."""
    from diffusers import DPMSolverMultistepScheduler

    return DPMSolverMultistepScheduler.from_config(training_scheduler.config)


def scaled_for_vae(vae: Any, latents: torch.Tensor) -> torch.Tensor:
    """Pipeline latents as the VAE decodes them: in its dtype, divided by its scaling factor."""
    return latents.to(vae.dtype) / vae.config.scaling_factor
