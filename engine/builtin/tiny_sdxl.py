"""A random-weight Stable Diffusion XL pipeline built offline in seconds: ``builtin:tiny-sdxl``.

It has everything that makes SDXL differ from SD1 (two CLIP text encoders whose hidden states are
concatenated, a pooled projection from the second, and the UNet's ``text_time`` conditioning on
six size numbers), at the tiny SD1 model's scale: a 2× VAE, trained at 64 px.

The two text encoders differ in width, and the second's projection differs from its hidden size,
as CLIP-L and OpenCLIP bigG do: single-file loaders tell the encoders apart by width, so equal
widths would let a swapped or untransposed tensor pass unnoticed (../shared/README.md).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from engine.convert.older_readers import write_for_older_readers

RESOLUTION = 64
TIME_EMBED_DIM = 8  # addition_time_embed_dim: each of the six size numbers gets this many features
TEXT_1 = {"hidden_size": 32, "intermediate_size": 37, "hidden_act": "quick_gelu"}  # like CLIP-L
TEXT_2 = {"hidden_size": 48, "intermediate_size": 64, "hidden_act": "gelu", "projection_dim": 40}  # like bigG


def build_sdxl_pipeline(seed: int = 0) -> Any:
    """A tiny random-weight ``StableDiffusionXLPipeline``; the same seed gives the same weights."""
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    from engine.builtin.tiny_model import write_byte_tokenizer

    torch.manual_seed(seed)
    with tempfile.TemporaryDirectory() as tmp:
        write_byte_tokenizer(Path(tmp))
        tokenizer = CLIPTokenizer(str(Path(tmp) / "vocab.json"), str(Path(tmp) / "merges.txt"), model_max_length=77)
        tokenizer_2 = CLIPTokenizer(str(Path(tmp) / "vocab.json"), str(Path(tmp) / "merges.txt"), model_max_length=77)

    def text_config(**dims: Any) -> Any:
        return CLIPTextConfig(
            num_attention_heads=4, num_hidden_layers=3, max_position_embeddings=77, vocab_size=len(tokenizer),
            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id, **dims,
        )

    text_encoder = CLIPTextModel(text_config(**TEXT_1, projection_dim=TEXT_1["hidden_size"]))
    text_encoder_2 = CLIPTextModelWithProjection(text_config(**TEXT_2))
    unet = UNet2DConditionModel(
        sample_size=RESOLUTION // 2,
        in_channels=4,
        out_channels=4,
        layers_per_block=2,
        block_out_channels=(32, 64),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        transformer_layers_per_block=(1, 2),
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        cross_attention_dim=TEXT_1["hidden_size"] + TEXT_2["hidden_size"],
        addition_embed_type="text_time",
        addition_time_embed_dim=TIME_EMBED_DIM,
        projection_class_embeddings_input_dim=6 * TIME_EMBED_DIM + TEXT_2["projection_dim"],
        norm_num_groups=32,
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        block_out_channels=(32, 64),
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        latent_channels=4,
        layers_per_block=1,
        sample_size=RESOLUTION,
        scaling_factor=0.13025,  # SDXL's VAE factor
        force_upcast=True,
    )
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
        steps_offset=1, timestep_spacing="leading", prediction_type="epsilon",
    )
    return StableDiffusionXLPipeline(
        vae=vae, text_encoder=text_encoder, text_encoder_2=text_encoder_2, tokenizer=tokenizer,
        tokenizer_2=tokenizer_2, unet=unet, scheduler=scheduler, add_watermarker=False,
    )


def save_tiny_sdxl(folder: Path, seed: int = 0) -> Path:
    """Save the tiny SDXL as a diffusers folder; returns the folder."""
    build_sdxl_pipeline(seed).save_pretrained(folder)
    write_for_older_readers(folder)
    return Path(folder)
