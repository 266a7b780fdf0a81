"""Where each weight of diffusers' Flux transformer lives in Black Forest Labs' original layout.

The original model (the ``flux1-dev.safetensors`` ComfyUI and Forge users have) fuses what
diffusers keeps apart: q, k and v in one ``qkv`` layer per stream of a double block, and q, k, v
and the MLP input in a single block's ``linear1``; its final modulation holds (shift, scale)
where diffusers' ``norm_out`` holds (scale, shift). Full weights (flux_single_file.py) and LoRA
files (flux_lora.py, named ``lora_unet_`` + the original name with ``_`` for ``.``) share these
tables.

Hand-written rather than diffusers' ``convert_flux_transformer_checkpoint_to_diffusers``: that
converter fixes the model's width at Flux.1's 3072, so it cannot read any other size (the
tests' tiny Flux among them). Here every size comes from the tensors; the tests check that this
mapping and diffusers' agree on Flux.1's real layout.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

BFL_PREFIX = "model.diffusion_model."  # how ComfyUI's full checkpoints nest the transformer
# The key diffusers' single-file loader recognises a Flux transformer by.
FLUX_KEY = "double_blocks.0.img_attn.norm.key_norm.scale"
MLP_RATIO = 4  # a single block's MLP is 4 × its width (FluxSingleTransformerBlock)

# diffusers module in a double-stream block → (original module, place in the fused module or None).
DOUBLE_BLOCK: dict[str, tuple[str, int | None]] = {
    "attn.to_q": ("img_attn.qkv", 0), "attn.to_k": ("img_attn.qkv", 1), "attn.to_v": ("img_attn.qkv", 2),
    "attn.to_out.0": ("img_attn.proj", None),
    "attn.add_q_proj": ("txt_attn.qkv", 0), "attn.add_k_proj": ("txt_attn.qkv", 1), "attn.add_v_proj": ("txt_attn.qkv", 2),
    "attn.to_add_out": ("txt_attn.proj", None),
    "ff.net.0.proj": ("img_mlp.0", None), "ff.net.2": ("img_mlp.2", None),
    "ff_context.net.0.proj": ("txt_mlp.0", None), "ff_context.net.2": ("txt_mlp.2", None),
    "norm1.linear": ("img_mod.lin", None), "norm1_context.linear": ("txt_mod.lin", None),
}
SINGLE_BLOCK: dict[str, tuple[str, int | None]] = {
    "attn.to_q": ("linear1", 0), "attn.to_k": ("linear1", 1), "attn.to_v": ("linear1", 2), "proj_mlp": ("linear1", 3),
    "proj_out": ("linear2", None), "norm.linear": ("modulation.lin", None),
}
TOP_LEVEL: dict[str, str] = {
    "x_embedder": "img_in", "context_embedder": "txt_in", "proj_out": "final_layer.linear",
    "time_text_embed.timestep_embedder.linear_1": "time_in.in_layer",
    "time_text_embed.timestep_embedder.linear_2": "time_in.out_layer",
    "time_text_embed.guidance_embedder.linear_1": "guidance_in.in_layer",
    "time_text_embed.guidance_embedder.linear_2": "guidance_in.out_layer",
    "time_text_embed.text_embedder.linear_1": "vector_in.in_layer",
    "time_text_embed.text_embedder.linear_2": "vector_in.out_layer",
}
# RMS norms of q and k: diffusers calls their parameter ``weight``, the original ``scale``.
DOUBLE_BLOCK_NORMS = {
    "attn.norm_q": "img_attn.norm.query_norm", "attn.norm_k": "img_attn.norm.key_norm",
    "attn.norm_added_q": "txt_attn.norm.query_norm", "attn.norm_added_k": "txt_attn.norm.key_norm",
}
SINGLE_BLOCK_NORMS = {"attn.norm_q": "norm.query_norm", "attn.norm_k": "norm.key_norm"}
# The final modulation: the same weights with its two halves swapped.
SWAPPED = {"norm_out.linear": "final_layer.adaLN_modulation.1"}

BLOCKS = {"transformer_blocks": "double_blocks", "single_transformer_blocks": "single_blocks"}
_ORIGINAL_BLOCK = re.compile(r"^(double_blocks|single_blocks)\.(\d+)\.(.+)$")


class UnknownFluxWeightError(KeyError):
    """Original-layout weights that no diffusers Flux.1 transformer has (``args[0]``: their keys)."""


def strip_prefix(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """The transformer's weights without ComfyUI's ``model.diffusion_model.`` (other parts dropped)."""
    if any(key.startswith(BFL_PREFIX) for key in state_dict):
        return {key[len(BFL_PREFIX):]: value for key, value in state_dict.items() if key.startswith(BFL_PREFIX)}
    return dict(state_dict)


def _inverse(table: Mapping[str, tuple[str, int | None]]) -> dict[str, list[str]]:
    """{original module: its diffusers modules, in their order inside it}."""
    parts: dict[str, dict[int, str]] = {}
    for module, (original, place) in table.items():
        parts.setdefault(original, {})[place or 0] = module
    return {original: [by_place[p] for p in sorted(by_place)] for original, by_place in parts.items()}


_FUSED = {"double_blocks": _inverse(DOUBLE_BLOCK), "single_blocks": _inverse(SINGLE_BLOCK)}
_NORMS = {"double_blocks": {v: k for k, v in DOUBLE_BLOCK_NORMS.items()},
          "single_blocks": {v: k for k, v in SINGLE_BLOCK_NORMS.items()}}
_TOP = {v: k for k, v in TOP_LEVEL.items()}
_SWAPPED = {v: k for k, v in SWAPPED.items()}


def _split_rows(tensor: Any, count: int, width: int) -> list[Any]:
    """A fused weight's parts: three of ``width`` rows (q, k, v), then the rest (a single block's MLP input)."""
    if count == 3:
        return list(tensor.chunk(3, dim=0))
    return list(tensor.split([width] * 3 + [tensor.shape[0] - 3 * width], dim=0))


def _swap_halves(tensor: Any) -> Any:
    import torch

    first, second = tensor.chunk(2, dim=0)
    return torch.cat([second, first], dim=0)


def _converted(key: str, tensor: Any, width: int) -> dict[str, Any] | None:
    """The diffusers weights that one original-layout weight becomes; None for a weight Flux.1 lacks."""
    module, _, parameter = key.rpartition(".")
    match = _ORIGINAL_BLOCK.match(module)
    if match:
        kind, index, inner = match.groups()
        prefix = f"{next(k for k, v in BLOCKS.items() if v == kind)}.{index}."
        if inner in _NORMS[kind] and parameter == "scale":
            return {f"{prefix}{_NORMS[kind][inner]}.weight": tensor}
        if inner in _FUSED[kind]:
            targets = _FUSED[kind][inner]
            parts = _split_rows(tensor, len(targets), width) if len(targets) > 1 else [tensor]
            # Views of one fused tensor share its storage, which safetensors refuses to save.
            return {f"{prefix}{t}.{parameter}": p.clone() if len(targets) > 1 else p for t, p in zip(targets, parts)}
    elif module in _TOP:
        return {f"{_TOP[module]}.{parameter}": tensor}
    elif module in _SWAPPED:
        return {f"{_SWAPPED[module]}.{parameter}": _swap_halves(tensor)}
    return None


def original_to_diffusers(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """A Flux.1 transformer's weights in diffusers' names from the original layout (without prefix).

    Raises ``UnknownFluxWeightError`` with the weights that have no place in diffusers' model.
    """
    width = state_dict["img_in.weight"].shape[0]
    out: dict[str, Any] = {}
    unknown = []
    for key, tensor in state_dict.items():
        converted = _converted(key, tensor, width)
        if converted is None:
            unknown.append(key)
        else:
            out.update(converted)
    if unknown:
        raise UnknownFluxWeightError(unknown)
    return out
