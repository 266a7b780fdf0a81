"""Random-weight Stable Diffusion pipelines built offline from configs.

The demo, the tests and the benchmarks cannot download weights, so they build SD-architecture
pipelines locally. Sizes: ``tiny`` (seconds on CPU, 64 px), ``medium`` (an SD-like 8x VAE at
256 px, for CPU timing) and ``sd15`` (the real SD1.5 architecture, for GPU benchmarks).
Variants: ``sd1`` (epsilon, CLIP quick_gelu) and ``sd2v`` (v-prediction, SD2-style UNet with
linear projections and a gelu text encoder). One exception to random weights: ``builtin:tiny-sd1``
loads the pretrained weights shipped in engine/builtin/assets/ (engine/builtin/tiny_weights.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from engine.builtin.clip_tokenizer import bytes_to_unicode as _bytes_to_unicode
from engine.convert.older_readers import write_for_older_readers

Size = Literal["tiny", "medium", "sd15"]
Variant = Literal["sd1", "sd2v"]
CLIP_VOCAB_SIZE = 49408  # SD1.x's CLIP tokenizer


@dataclass(frozen=True)
class _Dims:
    unet_channels: tuple[int, ...]
    unet_down: tuple[str, ...]
    unet_up: tuple[str, ...]
    cross_dim: int
    head_dim: int
    vae_channels: tuple[int, ...]
    text_hidden: int
    text_intermediate: int
    text_heads: int
    text_layers: int
    resolution: int
    layers_per_block: int


_DIMS: dict[str, _Dims] = {
    "tiny": _Dims(
        (32, 64), ("CrossAttnDownBlock2D",) * 2, ("CrossAttnUpBlock2D",) * 2,
        32, 8, (32, 64), 32, 37, 4, 2, 64, 2,
    ),
    "medium": _Dims(
        (64, 128, 256),
        ("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        128, 8, (32, 64, 128, 128), 128, 512, 4, 4, 256, 2,
    ),
    "sd15": _Dims(
        (320, 640, 1280, 1280),
        ("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        ("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        768, 8, (128, 256, 512, 512), 768, 3072, 12, 12, 512, 2,
    ),
}


def default_resolution(size: Size) -> int:
    """The training resolution the model of this size was shaped for."""
    return _DIMS[size].resolution


def write_byte_tokenizer(folder: Path) -> None:
    """A CLIP tokenizer with a byte-only vocabulary (514 entries, no merges)."""
    folder.mkdir(parents=True, exist_ok=True)
    alphabet = list(_bytes_to_unicode().values())
    vocab_list = alphabet + [c + "</w>" for c in alphabet] + ["<|startoftext|>", "<|endoftext|>"]
    vocab = {tok: i for i, tok in enumerate(vocab_list)}
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")


def build_pipeline(
    size: Size = "tiny", variant: Variant = "sd1", seed: int = 0, norm_groups: int = 32, attention_heads: int | None = None,
    vae_channels: tuple[int, ...] | None = None,
):
    """Build a random-weight StableDiffusionPipeline; the same seed gives the same weights.

    ``norm_groups`` (GroupNorm groups of the UNet and the VAE), ``attention_heads`` (the UNet's
    heads, else the size's own) and ``vae_channels`` (the VAE's levels, each halving the latent's
    side, else the size's own) are overridden by the pretrained tiny model: see engine/builtin/tiny_weights.py.
    """
    import tempfile

    import torch
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from engine.models.sd import assemble_pipeline

    d = _DIMS[size]
    vae_channels = vae_channels or d.vae_channels
    sd2 = variant == "sd2v"
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=d.resolution // (2 ** (len(vae_channels) - 1)),
        in_channels=4,
        out_channels=4,
        layers_per_block=d.layers_per_block,
        block_out_channels=d.unet_channels,
        down_block_types=d.unet_down,
        up_block_types=d.unet_up,
        cross_attention_dim=d.cross_dim,
        attention_head_dim=(attention_heads or d.head_dim) if not sd2 else tuple(max(1, c // 64) for c in d.unet_channels),
        use_linear_projection=sd2,
        norm_num_groups=norm_groups,
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        block_out_channels=vae_channels,
        down_block_types=("DownEncoderBlock2D",) * len(vae_channels),
        up_block_types=("UpDecoderBlock2D",) * len(vae_channels),
        latent_channels=4,
        layers_per_block=1 if size == "tiny" else 2,
        norm_num_groups=norm_groups,
        sample_size=d.resolution,
    )
    with tempfile.TemporaryDirectory() as tmp:
        write_byte_tokenizer(Path(tmp))
        tokenizer = CLIPTokenizer(
            str(Path(tmp) / "vocab.json"), str(Path(tmp) / "merges.txt"), model_max_length=77
        )
    text_config = CLIPTextConfig(
        hidden_size=d.text_hidden,
        intermediate_size=d.text_intermediate,
        num_attention_heads=d.text_heads,
        num_hidden_layers=d.text_layers,
        max_position_embeddings=77,
        # The SD1.5 size keeps CLIP's full embedding table, so memory benchmarks match the real model.
        vocab_size=CLIP_VOCAB_SIZE if size == "sd15" else len(tokenizer),
        hidden_act="gelu" if sd2 else "quick_gelu",
        projection_dim=d.text_hidden,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    text_encoder = CLIPTextModel(text_config)
    scheduler = DDPMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        num_train_timesteps=1000,
        clip_sample=False,
        steps_offset=1,
        prediction_type="v_prediction" if sd2 else "epsilon",
    )
    return assemble_pipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler)


def save_tiny_model(folder: Path, size: Size = "tiny", variant: Variant = "sd1", seed: int = 0, pretrained: bool = False) -> Path:
    """Save a pipeline as a diffusers folder (random weights, or the shipped pretrained tiny SD1); returns the folder."""
    if pretrained:
        from engine.builtin.tiny_weights import pretrained_pipeline

        if (size, variant) != ("tiny", "sd1"):
            raise ValueError(f"no pretrained weights ship for the {size} {variant} model; only for tiny sd1")
        pipe = pretrained_pipeline()
    else:
        pipe = build_pipeline(size=size, variant=variant, seed=seed)
    folder = Path(folder)
    pipe.save_pretrained(folder)
    write_for_older_readers(folder)
    return folder
