"""Stable Diffusion XL: two CLIP text encoders and a UNet conditioned on a pooled prompt and image sizes.

Prompt encoding follows the SDXL pipeline: both encoders' penultimate hidden states (no final
layer norm), concatenated, and the second encoder's projected pooled output. The UNet's
``text_time`` conditioning takes six numbers per image: its original size, the top-left corner
of the crop, and the target size, all in pixels (Podell et al. 2023, section 2.2).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import DbtuiError
from engine.models.clip_text import clip_hidden_states, token_ids
from engine.models.deferred_parts import DeferredParts
from engine.models.family import Components, ImageGeometry, LoadDtypes, TextEmbeddings
from engine.models.parts import SDXL_TOKENIZER_FOLDERS, load_clip_tokenizer, load_scheduler, load_vae, pretrained_part
from engine.models.unet_family import UNetNoiseFamily
from engine.support.json_file import read_json_object

if TYPE_CHECKING:
    import torch

PIPELINES = ("StableDiffusionXLPipeline", "StableDiffusionXLImg2ImgPipeline")


class RefinerNotTrainableError(DbtuiError):
    """The SDXL refiner was given as the model to train."""


def time_ids(geometry: list[ImageGeometry], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """SDXL's ``add_time_ids``: (original h, w, crop top, left, target h, w) per sample."""
    import torch

    rows = [[*g.original, *g.crop_top_left, *g.target] for g in geometry]
    return torch.tensor(rows, dtype=dtype, device=device)


class StableDiffusionXL(UNetNoiseFamily):
    id = "sdxl"
    label = "Stable Diffusion XL"
    text_encoder_names = ("text_encoder", "text_encoder_2")
    trained_text_encoders = (0, 1)  # both CLIPs train together
    default_resolution = 1024
    usual_size_multiple = 32  # 8 pixels a latent × 3 UNet levels, 2 of them halving

    def recognises(self, model_index: dict[str, Any]) -> bool:
        if model_index.get("_class_name") not in PIPELINES:
            return False
        if not (model_index.get("text_encoder") or [None])[0]:
            raise RefinerNotTrainableError(
                "this is the SDXL refiner (it has only the second text encoder), which refines finished images and "
                "cannot be DreamBooth-trained: use the SDXL base model or a fine-tune of it"
            )
        return True

    def load(self, folder: Path, *, vae: str | None, tokenizer: str | None, dtypes: LoadDtypes = LoadDtypes()) -> Components:
        return Components(
            family=self,
            folder=folder,
            tokenizers=[load_clip_tokenizer(folder, name, tokenizer) for name in SDXL_TOKENIZER_FOLDERS],
            text_encoder_parts=DeferredParts(lambda: [self.load_text_encoder(folder, i, dtypes.text_encoders)
                                                      for i in range(len(self.text_encoder_names))]),
            vae=load_vae(folder, vae),
            unet=self.load_denoiser(folder, dtypes.denoiser),
            noise_scheduler=load_scheduler(folder),
        )

    def load_text_encoder(self, folder: Path, index: int, dtype: torch.dtype | None = None) -> Any:
        import torch
        from transformers import CLIPTextModel, CLIPTextModelWithProjection

        kind = CLIPTextModelWithProjection if index == 1 else CLIPTextModel
        return pretrained_part(kind, folder, self.text_encoder_names[index], torch_dtype=dtype or torch.float32)

    def encode_text(self, tokenizers: list[Any], text_encoders: list[Any], captions: list[str], clip_skip: int,
                    device: torch.device) -> TextEmbeddings:
        import torch

        hidden = []
        pooled = None
        for tokenizer, text_encoder in zip(tokenizers, text_encoders):
            # SDXL's usual layer is the penultimate one; each clip_skip step goes one earlier.
            states, output = clip_hidden_states(text_encoder, token_ids(tokenizer, captions, device), clip_skip + 1)
            hidden.append(states)
            pooled = output[0]  # the second encoder's projected pooled output (text_embeds)
        return {"hidden": torch.cat(hidden, dim=-1), "pooled": pooled}

    def denoise(self, unet: Any, noisy: torch.Tensor, timesteps: torch.Tensor, text: TextEmbeddings,
                geometry: list[ImageGeometry], training: Any = None) -> torch.Tensor:
        pooled = text["pooled"]
        conditions = {"text_embeds": pooled, "time_ids": time_ids(geometry, pooled.dtype, noisy.device)}
        return unet(noisy, timesteps, text["hidden"], added_cond_kwargs=conditions).sample

    def pipeline(self, components: Components, unet: Any, text_encoders: list[Any], scheduler: Any) -> Any:
        from diffusers import StableDiffusionXLPipeline

        return StableDiffusionXLPipeline(
            vae=components.vae, text_encoder=text_encoders[0], text_encoder_2=text_encoders[1],
            tokenizer=components.tokenizers[0], tokenizer_2=components.tokenizers[1], unet=unet, scheduler=scheduler,
            add_watermarker=False, force_zeros_for_empty_prompt=self.zeroes_empty_negative(components.folder),
        )

    def prompt_kwargs(self, positive: TextEmbeddings, negative: TextEmbeddings) -> dict[str, Any]:
        return {
            "prompt_embeds": positive["hidden"], "pooled_prompt_embeds": positive["pooled"],
            "negative_prompt_embeds": negative["hidden"], "negative_pooled_prompt_embeds": negative["pooled"],
        }

    def zeroes_empty_negative(self, folder: Path) -> bool:
        # As StableDiffusionXLPipeline.from_pretrained(folder) configures itself: its own default where the model is silent.
        return bool(read_json_object(Path(folder) / "model_index.json").get("force_zeros_for_empty_prompt", True))

    def export_lora(self, out_dir: Path, unet: Any, text_encoders: list[Any] | None) -> Path:
        from engine.convert import export_lora_diffusers

        first, second = text_encoders or (None, None)
        return export_lora_diffusers(out_dir, unet=unet, text_encoder=first, text_encoder_2=second, sdxl=True)

    def export_lora_kohya(self, lora_dir: Path, out_file: Path, components: Components, emit: Any = None) -> Path:
        from engine.convert import export_lora_kohya

        return export_lora_kohya(lora_dir, out_file, sdxl=True,
                                 v_prediction=components.prediction_type == "v_prediction", emit=emit)
