"""Diffusers → original Stable Diffusion (LDM) key names, derived from each model's config.

Why this is written by hand: diffusers reads single files (``from_single_file``) but has no
library API for writing them; its repository script hard-codes SD1.5's four-level layout and,
under transformers 5, drops the CLIP ``text_model.`` prefix, so its files fail to round-trip.
Here every name comes from the config (block count, layers per block, which blocks have
attention), so any SD1/SD2/SDXL-shaped model maps, tiny test models included. Every tensor is
either mapped or reported: nothing is dropped silently.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
CLIP_PREFIX = "cond_stage_model.transformer.text_model."  # SD1.x: OpenAI CLIP (transformers layout)
OPEN_CLIP_PREFIX = "cond_stage_model.model."  # SD2.x: OpenCLIP ViT-H
# SDXL: CLIP-L in the transformers layout (with ``text_model.``, which diffusers' loader requires),
# then OpenCLIP bigG in OpenCLIP names.
SDXL_CLIP_PREFIX = "conditioner.embedders.0.transformer.text_model."
SDXL_OPEN_CLIP_PREFIX = "conditioner.embedders.1.model."

# Renames inside one block, applied to the rest of the key after the block prefix.
UNET_RESNET = {
    "norm1.": "in_layers.0.",
    "conv1.": "in_layers.2.",
    "time_emb_proj.": "emb_layers.1.",
    "norm2.": "out_layers.0.",
    "conv2.": "out_layers.3.",
    "conv_shortcut.": "skip_connection.",
}
UNET_TOP = {
    "time_embedding.linear_1.": "time_embed.0.",
    "time_embedding.linear_2.": "time_embed.2.",
    "conv_in.": "input_blocks.0.0.",
    "conv_norm_out.": "out.0.",
    "conv_out.": "out.2.",
    # SDXL's embedding of the pooled text and the six size numbers.
    "add_embedding.linear_1.": "label_emb.0.0.",
    "add_embedding.linear_2.": "label_emb.0.2.",
}
VAE_RESNET = {"conv_shortcut.": "nin_shortcut."}
VAE_ATTENTION = {
    "group_norm.": "norm.",
    "to_q.": "q.",
    "to_k.": "k.",
    "to_v.": "v.",
    "to_out.0.": "proj_out.",
}
VAE_TOP = {
    "encoder.conv_norm_out.": "encoder.norm_out.",
    "decoder.conv_norm_out.": "decoder.norm_out.",
}
OPEN_CLIP_TOP = {
    "embeddings.token_embedding.weight": "token_embedding.weight",
    "embeddings.position_embedding.weight": "positional_embedding",
    "final_layer_norm.weight": "ln_final.weight",
    "final_layer_norm.bias": "ln_final.bias",
}
OPEN_CLIP_LAYER = {
    "layer_norm1.": "ln_1.",
    "layer_norm2.": "ln_2.",
    "self_attn.out_proj.": "attn.out_proj.",
    "mlp.fc1.": "mlp.c_fc.",
    "mlp.fc2.": "mlp.c_proj.",
}
# OpenCLIP's trained logit scale (ln 100); SD never uses it, clients expect the tensor to exist.
OPEN_CLIP_LOGIT_SCALE = math.log(100.0)


class UnmappedKeyError(ValueError):
    """A tensor the table does not cover (a model shape this exporter does not support)."""


def _rename(rest: str, table: Mapping[str, str]) -> str:
    for old, new in table.items():
        if rest.startswith(old):
            return new + rest[len(old):]
    return rest


def _map_by_prefix(
    state_dict: Mapping[str, Any], blocks: list[tuple[str, str, Mapping[str, str]]], component: str
) -> dict[str, Any]:
    """Rename each key by its longest matching block prefix, then by that block's inner table."""
    blocks = sorted(blocks, key=lambda b: len(b[0]), reverse=True)
    out: dict[str, Any] = {}
    for key, value in state_dict.items():
        for prefix, target, inner in blocks:
            if key.startswith(prefix):
                out[target + _rename(key[len(prefix):], inner)] = value
                break
        else:
            raise UnmappedKeyError(f"{component}: no original-layout name for '{key}'")
    return out


def _layers_per_block(config: Mapping[str, Any]) -> int:
    layers = config["layers_per_block"]
    if not isinstance(layers, int):
        # The original UNet has one num_res_blocks for every level.
        raise UnmappedKeyError("a UNet with a different layers_per_block per level has no original layout")
    return layers


def unet_blocks(config: Mapping[str, Any]) -> list[tuple[str, str, Mapping[str, str]]]:
    """(diffusers prefix, original prefix, inner renames) for every block of this UNet."""
    layers = _layers_per_block(config)
    if config.get("mid_block_type", "UNetMidBlock2DCrossAttn") != "UNetMidBlock2DCrossAttn":
        raise UnmappedKeyError("the original layout needs a cross-attention mid block")
    blocks = [(d, o, {}) for d, o in UNET_TOP.items()]
    blocks += [
        ("mid_block.resnets.0.", "middle_block.0.", UNET_RESNET),
        ("mid_block.attentions.0.", "middle_block.1.", {}),
        ("mid_block.resnets.1.", "middle_block.2.", UNET_RESNET),
    ]
    for i, _ in enumerate(config["down_block_types"]):
        for j in range(layers):
            n = 1 + i * (layers + 1) + j
            blocks.append((f"down_blocks.{i}.resnets.{j}.", f"input_blocks.{n}.0.", UNET_RESNET))
            blocks.append((f"down_blocks.{i}.attentions.{j}.", f"input_blocks.{n}.1.", {}))
        blocks.append((f"down_blocks.{i}.downsamplers.0.conv.", f"input_blocks.{(i + 1) * (layers + 1)}.0.op.", {}))
    for i, kind in enumerate(config["up_block_types"]):
        for j in range(layers + 1):
            n = i * (layers + 1) + j
            blocks.append((f"up_blocks.{i}.resnets.{j}.", f"output_blocks.{n}.0.", UNET_RESNET))
            blocks.append((f"up_blocks.{i}.attentions.{j}.", f"output_blocks.{n}.1.", {}))
        # The upsampler follows the last layer's resnet, and its attention when the block has one.
        slot = 2 if "CrossAttn" in kind else 1
        blocks.append((f"up_blocks.{i}.upsamplers.0.", f"output_blocks.{i * (layers + 1) + layers}.{slot}.", {}))
    return blocks


def vae_blocks(config: Mapping[str, Any]) -> list[tuple[str, str, Mapping[str, str]]]:
    """(diffusers prefix, original prefix, inner renames) for every block of this VAE."""
    levels = len(config["block_out_channels"])
    layers = config["layers_per_block"]
    blocks = [(d, o, {}) for d, o in VAE_TOP.items()]
    for part in ("encoder", "decoder"):
        blocks += [
            (f"{part}.conv_in.", f"{part}.conv_in.", {}),
            (f"{part}.conv_out.", f"{part}.conv_out.", {}),
            (f"{part}.mid_block.resnets.0.", f"{part}.mid.block_1.", VAE_RESNET),
            (f"{part}.mid_block.resnets.1.", f"{part}.mid.block_2.", VAE_RESNET),
            (f"{part}.mid_block.attentions.0.", f"{part}.mid.attn_1.", VAE_ATTENTION),
        ]
    for i in range(levels):
        for j in range(layers):
            blocks.append((f"encoder.down_blocks.{i}.resnets.{j}.", f"encoder.down.{i}.block.{j}.", VAE_RESNET))
        blocks.append((f"encoder.down_blocks.{i}.downsamplers.0.", f"encoder.down.{i}.downsample.", {}))
        # The original decoder counts its levels from the bottom.
        level = levels - 1 - i
        for j in range(layers + 1):
            blocks.append((f"decoder.up_blocks.{i}.resnets.{j}.", f"decoder.up.{level}.block.{j}.", VAE_RESNET))
        blocks.append((f"decoder.up_blocks.{i}.upsamplers.0.", f"decoder.up.{level}.upsample.", {}))
    blocks += [("quant_conv.", "quant_conv.", {}), ("post_quant_conv.", "post_quant_conv.", {})]
    return blocks


def unet_to_original(state_dict: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
    mapped = _map_by_prefix(state_dict, unet_blocks(config), "UNet")
    return {UNET_PREFIX + k: v for k, v in mapped.items()}


def vae_to_original(state_dict: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
    mapped = _map_by_prefix(state_dict, vae_blocks(config), "VAE")
    out = {}
    for key, value in mapped.items():
        # The original mid-block attention uses 1x1 convolutions where diffusers uses linears.
        if ".mid.attn_1." in key and key.endswith(("q.weight", "k.weight", "v.weight", "proj_out.weight")):
            value = value.reshape(*value.shape, 1, 1)
        out[VAE_PREFIX + key] = value
    return out


def text_encoder_keys(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """CLIPTextModel weights under their transformers-4 names (``text_model.`` dropped in 5)."""
    out = {}
    for key, value in state_dict.items():
        key = key.removeprefix("text_model.")
        if key == "embeddings.position_ids":  # a buffer, not a weight; clients rebuild it
            continue
        out[key] = value
    return out


def clip_to_original(state_dict: Mapping[str, Any], prefix: str = CLIP_PREFIX) -> dict[str, Any]:
    """OpenAI CLIP (SD1.x, SDXL's first encoder): the transformers layout under ``prefix``."""
    return {prefix + k: v for k, v in text_encoder_keys(state_dict).items()}


def _open_clip_layers(weights: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """Embeddings, layers and final norm in OpenCLIP names under ``prefix``, q/k/v fused into ``in_proj``."""
    import torch

    out: dict[str, Any] = {}
    layer_prefix = "encoder.layers."
    fused: dict[str, dict[str, Any]] = {}
    for key, value in weights.items():
        if key in OPEN_CLIP_TOP:
            out[prefix + OPEN_CLIP_TOP[key]] = value
            continue
        if not key.startswith(layer_prefix):
            raise UnmappedKeyError(f"text encoder: no original-layout name for '{key}'")
        index, rest = key[len(layer_prefix):].split(".", 1)
        base = f"{prefix}transformer.resblocks.{index}."
        if rest.startswith(("self_attn.q_proj.", "self_attn.k_proj.", "self_attn.v_proj.")):
            proj, kind = rest.split(".")[1:]
            fused.setdefault(f"{base}attn.in_proj_{kind}", {})[proj] = value
            continue
        renamed = _rename(rest, OPEN_CLIP_LAYER)
        if renamed == rest:
            raise UnmappedKeyError(f"text encoder: no original-layout name for '{key}'")
        out[base + renamed] = value
    for key, parts in fused.items():
        out[key] = torch.cat([parts["q_proj"], parts["k_proj"], parts["v_proj"]], dim=0)
    return out


def open_clip_to_original(state_dict: Mapping[str, Any], num_layers: int) -> dict[str, Any]:
    """SD2.x: the OpenCLIP layout, q/k/v fused into ``in_proj``.

    diffusers keeps the 23 layers SD2 uses (it conditions on the penultimate layer); the original
    has 24. Like kohya sd-scripts, layer 24 is written as a copy of layer 23, with an identity
    ``text_projection`` and ``logit_scale``, so clients that expect the full OpenCLIP find every
    tensor (diffusers' loader ignores exactly these). Nothing reads their values for SD.
    """
    import torch

    weights = text_encoder_keys(state_dict)
    out = _open_clip_layers(weights, OPEN_CLIP_PREFIX)
    last = f"{OPEN_CLIP_PREFIX}transformer.resblocks.{num_layers - 1}."
    extra = f"{OPEN_CLIP_PREFIX}transformer.resblocks.{num_layers}."
    for key in [k for k in out if k.startswith(last)]:
        out[extra + key[len(last):]] = out[key].clone()
    width = weights["embeddings.token_embedding.weight"].shape[1]
    dtype = weights["embeddings.token_embedding.weight"].dtype
    out[OPEN_CLIP_PREFIX + "text_projection"] = torch.eye(width, dtype=dtype)
    out[OPEN_CLIP_PREFIX + "logit_scale"] = torch.tensor(OPEN_CLIP_LOGIT_SCALE, dtype=dtype)
    return out


def open_clip_xl_to_original(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """SDXL's second encoder (bigG with projection): OpenCLIP names, every layer kept.

    OpenCLIP applies its projection as ``pooled @ text_projection``, a linear layer's weight
    transposed; diffusers' loader transposes it back.
    """
    weights = dict(text_encoder_keys(state_dict))
    if "text_projection.weight" not in weights:
        raise UnmappedKeyError("second text encoder: no text_projection (SDXL's needs CLIPTextModelWithProjection)")
    projection = weights.pop("text_projection.weight")
    out = _open_clip_layers(weights, SDXL_OPEN_CLIP_PREFIX)
    out[SDXL_OPEN_CLIP_PREFIX + "text_projection"] = projection.T.contiguous()
    return out


def is_open_clip(text_config: Mapping[str, Any]) -> bool:
    """SD2's OpenCLIP uses gelu; OpenAI's CLIP (SD1) uses quick_gelu."""
    return text_config.get("hidden_act") == "gelu"


def to_original(
    unet: Mapping[str, Any],
    unet_config: Mapping[str, Any],
    vae: Mapping[str, Any],
    vae_config: Mapping[str, Any],
    text_encoder: Mapping[str, Any],
    text_config: Mapping[str, Any],
    text_encoder_2: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One original-layout state dict from the diffusers components.

    With ``text_encoder_2`` (SDXL), the encoders go under ``conditioner.embedders.0``/``.1``.
    """
    out = unet_to_original(unet, unet_config)
    out.update(vae_to_original(vae, vae_config))
    if text_encoder_2 is not None:
        out.update(clip_to_original(text_encoder, SDXL_CLIP_PREFIX))
        out.update(open_clip_xl_to_original(text_encoder_2))
    elif is_open_clip(text_config):
        out.update(open_clip_to_original(text_encoder, text_config["num_hidden_layers"]))
    else:
        out.update(clip_to_original(text_encoder))
    return out
