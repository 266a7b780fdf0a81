"""What SD1/SD2 and SDXL share as families: a UNet denoiser trained on a DDPM noise schedule."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.models.family import CLIP_READER, SettingsRefusedError
from engine.models.lora_layers import kohya_text_encoder_refusals
from engine.models.noise_objective import NoiseObjective, flow_settings_refusals, multistep_sampler, scaled_for_vae
from engine.models.parts import UNET_ATTENTION_TARGETS, load_unet, unet_latent_multiple

if TYPE_CHECKING:
    import torch


class UNetNoiseFamily:
    """The UNet-and-noise-schedule half of the family protocol; subclasses add their text encoders."""

    label = ""
    denoiser_name = "unet"
    usual_guidance = 7.5  # classifier-free guidance, as diffusers' SD and SDXL pipelines default to
    takes_negative_prompt = True
    refuses_off_step_sizes = False  # a UNet takes any multiple of 8; only the standard buckets round to its step
    trained_text_encoders = (0,)
    default_lora_targets = UNET_ATTENTION_TARGETS
    caption_readers = (CLIP_READER,)

    def load_denoiser(self, folder: Path, dtype: torch.dtype | None = None) -> Any:
        return load_unet(folder, dtype)

    def check_profile(self, profile: Any, size_multiple: int | None = None) -> None:
        refused = flow_settings_refusals(profile, self.label) + kohya_text_encoder_refusals(profile)
        if refused:
            raise SettingsRefusedError(refused)

    def profile_warnings(self, profile: Any, precision: str) -> list[tuple[str, str]]:
        return []  # fp16 is safe here: the VAE, SDXL's in particular, is kept in fp32 where fp16 would overflow

    def latent_multiple(self, denoiser: Any) -> int:
        return unet_latent_multiple(denoiser)

    def latent_channels(self, denoiser: Any) -> int:
        return int(denoiser.config.out_channels)  # an inpainting UNet takes more in (mask, image) but denoises these

    def zeroes_empty_negative(self, folder: Path) -> bool:
        return False  # SD's pipeline encodes "" (SDXL's reads its model's setting)

    def kohya_unplaced(self, layers: list[str]) -> list[str]:
        return []  # the UNet's key map (engine/convert/keymap.py) names every layer of the original layout

    def objective(self, scheduler: Any, training: Any = None) -> NoiseObjective:
        return NoiseObjective(scheduler)

    def sampling_scheduler(self, training_scheduler: Any) -> Any:
        return multistep_sampler(training_scheduler)

    def latents_for_vae(self, pipe: Any, latents: torch.Tensor, height: int, width: int) -> torch.Tensor:
        return scaled_for_vae(pipe.vae, latents)
