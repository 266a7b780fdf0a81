"""The real Stable Diffusion XL base architecture with random weights: ``builtin:sdxl-random``.

For GPU benchmarks (bench/suite.py --model sdxl), which cannot download the 7 GB base model: the
same configs as stabilityai/stable-diffusion-xl-base-1.0 (UNet 2.6 B parameters, CLIP-L and
OpenCLIP bigG text encoders with CLIP's full 49,408-token vocabulary, the 8× VAE), so memory
and time per step match the real model. Its 3.5 B fp32 parameters take about 14 GB to build,
on the GPU when it has room (else in RAM), and as much disk once saved. The tiny SDXL of the
tests is engine/builtin/tiny_sdxl.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.convert.older_readers import write_for_older_readers

RESOLUTION = 1024
FP32_BYTES = 3_469_000_000 * 4  # UNet, VAE and both text encoders (tests/test_gpu_measure.py counts them)
# The configs of stabilityai/stable-diffusion-xl-base-1.0 (unet/, vae/, text_encoder*/config.json),
# defaults left out.
UNET = {
    "sample_size": 128,
    "layers_per_block": 2,
    "block_out_channels": (320, 640, 1280),
    "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    "up_block_types": ("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    "transformer_layers_per_block": (1, 2, 10),
    "attention_head_dim": (5, 10, 20),
    "use_linear_projection": True,
    "cross_attention_dim": 2048,  # CLIP-L's 768 + bigG's 1280, concatenated
    "addition_embed_type": "text_time",
    "addition_time_embed_dim": 256,
    "projection_class_embeddings_input_dim": 2816,  # 6 size numbers × 256 + bigG's 1280 pooled
}
VAE = {
    "block_out_channels": (128, 256, 512, 512),
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
    "layers_per_block": 2,
    "latent_channels": 4,
    "sample_size": RESOLUTION,
    "scaling_factor": 0.13025,
    "force_upcast": True,
}
TEXT_1 = {  # CLIP ViT-L/14
    "hidden_size": 768, "intermediate_size": 3072, "num_attention_heads": 12, "num_hidden_layers": 12,
    "hidden_act": "quick_gelu", "projection_dim": 768,
}
TEXT_2 = {  # OpenCLIP ViT-bigG/14, with its projection
    "hidden_size": 1280, "intermediate_size": 5120, "num_attention_heads": 20, "num_hidden_layers": 32,
    "hidden_act": "gelu", "projection_dim": 1280,
}


def text_config(tokenizer: Any, dims: dict[str, Any]) -> Any:
    """A CLIP text encoder's config of ``dims`` (TEXT_1, TEXT_2) over ``tokenizer``'s vocabulary."""
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        max_position_embeddings=77, vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, **dims,
    )


def build_models(tokenizer: Any) -> dict[str, Any]:
    """UNet, VAE and both text encoders at SDXL's real sizes, with random weights.

    They are made on torch's current default device: under ``torch.device("meta")`` they take no
    memory, which is how the tests check the sizes.
    """
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    return {
        "unet": UNet2DConditionModel(**UNET),
        "vae": AutoencoderKL(**VAE),
        "text_encoder": CLIPTextModel(text_config(tokenizer, TEXT_1)),
        "text_encoder_2": CLIPTextModelWithProjection(text_config(tokenizer, TEXT_2)),
    }


def build_sdxl_random_pipeline(seed: int = 0) -> Any:
    """A ``StableDiffusionXLPipeline`` of SDXL's real size with random weights; the same seed on the same device gives
    the same weights."""
    import torch
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline

    from engine.builtin.clip_tokenizer import OPEN_CLIP_PAD, clip_tokenizer

    torch.manual_seed(seed)
    tokenizer = clip_tokenizer()
    # SDXL's schedule as stabilityai ships it (scheduler/scheduler_config.json).
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
        steps_offset=1, timestep_spacing="leading", prediction_type="epsilon",
    )
    return StableDiffusionXLPipeline(
        **build_models(tokenizer), tokenizer=tokenizer, tokenizer_2=clip_tokenizer(OPEN_CLIP_PAD),
        scheduler=scheduler, add_watermarker=False,
    )


def save_sdxl_random(folder: Path, seed: int = 0) -> Path:
    """Save the random-weight SDXL as a diffusers folder; returns the folder.

    Made on the GPU when it has room: initialising 3.5 B parameters takes a CPU a minute or more.
    """
    import torch

    from engine.builtin.build_device import build_device

    with build_device(FP32_BYTES) as device, torch.device(device):
        build_sdxl_random_pipeline(seed).save_pretrained(folder)
    write_for_older_readers(folder)
    return Path(folder)
