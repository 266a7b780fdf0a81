"""Stable Diffusion 1.x and 2.x: one CLIP text encoder, a UNet, epsilon or v-prediction."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.models.clip_text import clip_hidden_states, final_layer_norm, token_ids
from engine.models.deferred_parts import DeferredParts
from engine.models.family import Components, ImageGeometry, LoadDtypes, TextEmbeddings
from engine.models.parts import load_clip_tokenizer, load_scheduler, load_vae, pretrained_part
from engine.models.unet_family import UNetNoiseFamily

if TYPE_CHECKING:
    import torch


def assemble_pipeline(*, vae: Any, text_encoder: Any, tokenizer: Any, unet: Any, scheduler: Any) -> Any:
    """A StableDiffusionPipeline over these models (no safety checker: it is not ours to train)."""
    from diffusers import StableDiffusionPipeline

    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


class StableDiffusion(UNetNoiseFamily):
    id = "sd"
    label = "Stable Diffusion 1.x/2.x"
    text_encoder_names = ("text_encoder",)
    default_resolution = 512
    usual_size_multiple = 64  # 8 pixels a latent × 4 UNet levels that halve

    def recognises(self, model_index: dict[str, Any]) -> bool:
        return model_index.get("_class_name") == "StableDiffusionPipeline"

    def load(self, folder: Path, *, vae: str | None, tokenizer: str | None, dtypes: LoadDtypes = LoadDtypes()) -> Components:
        return Components(
            family=self,
            folder=folder,
            tokenizers=[load_clip_tokenizer(folder, "tokenizer", tokenizer)],
            text_encoder_parts=DeferredParts(lambda: [self.load_text_encoder(folder, i, dtypes.text_encoders)
                                                      for i in range(len(self.text_encoder_names))]),
            vae=load_vae(folder, vae),
            unet=self.load_denoiser(folder, dtypes.denoiser),
            noise_scheduler=load_scheduler(folder),
        )

    def load_text_encoder(self, folder: Path, index: int, dtype: torch.dtype | None = None) -> Any:
        import torch
        from transformers import CLIPTextModel

        return pretrained_part(CLIPTextModel, folder, self.text_encoder_names[index], torch_dtype=dtype or torch.float32)

    def encode_text(self, tokenizers: list[Any], text_encoders: list[Any], captions: list[str], clip_skip: int,
                    device: torch.device) -> TextEmbeddings:
        """The last layer's hidden states, or the ``clip_skip``-th from the end through the final
        layer norm (as diffusers does)."""
        text_encoder = text_encoders[0]
        hidden, _ = clip_hidden_states(text_encoder, token_ids(tokenizers[0], captions, device), clip_skip)
        if clip_skip != 1:
            hidden = final_layer_norm(text_encoder)(hidden)
        return {"hidden": hidden}

    def denoise(self, unet: Any, noisy: torch.Tensor, timesteps: torch.Tensor, text: TextEmbeddings,
                geometry: list[ImageGeometry], training: Any = None) -> torch.Tensor:
        return unet(noisy, timesteps, text["hidden"]).sample

    def pipeline(self, components: Components, unet: Any, text_encoders: list[Any], scheduler: Any) -> Any:
        return assemble_pipeline(vae=components.vae, text_encoder=text_encoders[0], tokenizer=components.tokenizer,
                                 unet=unet, scheduler=scheduler)

    def prompt_kwargs(self, positive: TextEmbeddings, negative: TextEmbeddings) -> dict[str, Any]:
        return {"prompt_embeds": positive["hidden"], "negative_prompt_embeds": negative["hidden"]}

    def export_lora(self, out_dir: Path, unet: Any, text_encoders: list[Any] | None) -> Path:
        from engine.convert import export_lora_diffusers

        return export_lora_diffusers(out_dir, unet=unet, text_encoder=text_encoders[0] if text_encoders else None)

    def export_lora_kohya(self, lora_dir: Path, out_file: Path, components: Components, emit: Any = None) -> Path:
        from engine.convert import export_lora_kohya

        return export_lora_kohya(lora_dir, out_file, sdxl=False, sd2=self._base_is_sd2(components),
                                 v_prediction=components.prediction_type == "v_prediction", emit=emit)

    def _base_is_sd2(self, components: Components) -> bool | None:
        """SD2 is told by its base model's text encoder, OpenCLIP (as the single-file export tells it): the LoRA's
        own weights show it only where a layer reads the text's width, and WebUIs hide a LoRA filed under SD1. From
        the encoder where it is loaded, else its config file (the encoders are dropped once the captions are cached);
        None, the weights' guess, where that cannot be read."""
        from engine.convert.keymap import is_open_clip

        loaded = components.text_encoder_parts.loaded()
        if loaded:
            return is_open_clip(loaded[0].config.to_dict())
        try:
            config = json.loads((components.folder / self.text_encoder_names[0] / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return is_open_clip(config) if isinstance(config, dict) else None
