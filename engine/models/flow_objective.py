"""The flow-matching objective of Flux: a straight path from the image to noise, and its velocity.

At noise level σ in [0, 1] the model sees (1 − σ)·x₀ + σ·ε and learns the velocity ε − x₀
(Lipman et al. 2023; Esser et al. 2024, the SD3 paper, for the timestep densities). Timesteps are
σ·1000, as the pipelines and the scheduler count them.

σ is drawn by diffusers' ``compute_density_for_timestep_sampling`` (uniform, logit-normal or mode),
then shifted towards noise: by the model's own rule, which for Flux.1 [dev] grows with the image's
token count (the scheduler's ``use_dynamic_shifting``, with the pipeline's ``calculate_shift``), or
by a fixed shift from the profile. Loss weights come from ``compute_loss_weighting_for_sd3``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.errors import DbtuiError

if TYPE_CHECKING:
    import torch

# The profile's names for diffusers' density schemes ("none" is diffusers' name for uniform).
DENSITY_SCHEMES = {"uniform": "none", "logit_normal": "logit_normal", "mode": "mode"}


class MinSnrNotApplicableError(DbtuiError):
    """Min-SNR weighting asked of a flow-matching model."""


def resolution_mu(image_tokens: int, scheduler_config: Any) -> float:
    """The dynamic shift's μ for an image of ``image_tokens`` packed tokens, as FluxPipeline computes it."""
    from diffusers.pipelines.flux.pipeline_flux import calculate_shift

    return calculate_shift(
        image_tokens,
        scheduler_config.get("base_image_seq_len", 256),
        scheduler_config.get("max_image_seq_len", 4096),
        scheduler_config.get("base_shift", 0.5),
        scheduler_config.get("max_shift", 1.15),
    )


def fixed_shift(sigmas: torch.Tensor, shift: float) -> torch.Tensor:
    """σ moved towards noise by a constant ``shift`` (the scheduler's static formula)."""
    return shift * sigmas / (1 + (shift - 1) * sigmas)


class FlowObjective:
    """Flow matching over a ``FlowMatchEulerDiscreteScheduler``'s settings.

    ``settings`` is the profile's [training.flow] (engine.profile.training_sections.FlowSection); ``patch`` is
    how many latent pixels a side of one denoiser token covers (Flux packs 2×2), which sets the
    token count the dynamic shift depends on.
    """

    def __init__(self, scheduler: Any, settings: Any, patch: int):
        self.scheduler = scheduler
        self.settings = settings
        self.patch = patch
        self.num_train_timesteps = scheduler.config.num_train_timesteps

    def image_tokens(self, latents: torch.Tensor) -> int:
        height, width = latents.shape[-2:]
        return (height // self.patch) * (width // self.patch)

    def shifted(self, sigmas: torch.Tensor, image_tokens: int) -> torch.Tensor:
        """σ after the profile's fixed shift, else after the model's own (dynamic or static) shift."""
        config = self.scheduler.config
        if self.settings.shift is not None:
            return fixed_shift(sigmas, self.settings.shift)
        if config.get("use_dynamic_shifting", False):
            return self.scheduler.time_shift(resolution_mu(image_tokens, config), 1.0, sigmas)
        return fixed_shift(sigmas, config.get("shift", 1.0))

    def sample_timesteps(self, latents: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        from diffusers.training_utils import compute_density_for_timestep_sampling

        settings = self.settings
        u = compute_density_for_timestep_sampling(
            DENSITY_SCHEMES[settings.timestep_sampling], latents.shape[0], logit_mean=settings.logit_mean,
            logit_std=settings.logit_std, mode_scale=settings.mode_scale, generator=generator,
        )
        return self.shifted(u, self.image_tokens(latents)) * self.num_train_timesteps

    def sigmas(self, timesteps: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """σ per sample, shaped to broadcast over ``like``."""
        sigmas = timesteps.to(like.device, like.dtype) / self.num_train_timesteps
        return sigmas.reshape(-1, *([1] * (like.ndim - 1)))

    def noisy(self, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        sigmas = self.sigmas(timesteps, latents)
        return (1.0 - sigmas) * latents + sigmas * noise

    def target(self, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        return noise - latents

    def min_snr_weights(self, timesteps: torch.Tensor, gamma: float) -> torch.Tensor:
        raise MinSnrNotApplicableError(
            "min-SNR weighting is defined for noise-schedule models; flow matching has no SNR to clip: remove "
            "training.min_snr_gamma (training.flow.loss_weighting offers sigma_sqrt and cosmap)"
        )

    def loss_weights(self, timesteps: torch.Tensor) -> torch.Tensor | None:
        from diffusers.training_utils import compute_loss_weighting_for_sd3

        if self.settings.loss_weighting == "none":
            return None
        return compute_loss_weighting_for_sd3(self.settings.loss_weighting, timesteps.float() / self.num_train_timesteps)
