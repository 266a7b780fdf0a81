"""Flux LoRA files: diffusers format, and the kohya layout that ComfyUI, Forge and sd-scripts load.

The diffusers file (``transformer.<module>.lora_A/B.weight``, adapter config in the metadata)
loads with ``FluxPipeline.load_lora_weights``; ComfyUI takes its names too, but not its metadata,
so each module's scale is folded into its weights. For the WebUIs we write kohya sd-scripts'
layout, named after Black Forest Labs' original modules: ``lora_unet_double_blocks_0_img_attn_qkv``,
``lora_unet_single_blocks_0_linear1``… with ``lora_down``/``lora_up``/``alpha``. ComfyUI's
``comfy/lora.py`` maps every ``lora_unet_<original name>`` onto its Flux weights, and Forge shares
that loader. diffusers' own reader of this layout takes the blocks back but drops trained outer layers
(``x_embedder``, ``context_embedder``, ``time_text_embed``, ``proj_out``) and the final layer's alpha,
so diffusers users load the diffusers file, or what ``lora-to-diffusers`` makes of a kohya one.

The original model fuses modules that diffusers keeps apart: q, k and v into one ``qkv`` layer
per stream of a double block, and q, k, v and the MLP input into a single block's ``linear1``.
Their LoRAs fuse exactly: the down matrices stacked, the up matrices placed block-diagonally
(a module that did not train contributes zero rows), and alpha scaled with the summed rank so
that alpha / rank, the LoRA's scale, is unchanged.

A LoRA on CLIP-L (Flux's first text encoder) is saved under ``text_encoder.`` in the diffusers file
and as ``lora_te1_text_model_encoder_layers_0_self_attn_q_proj…`` in the kohya one, the names
ComfyUI's LoRA key map gives Flux's ``clip_l`` and diffusers' kohya reader takes back.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engine.convert._files import Emit, atomic_file
from engine.convert.errors import ConvertError, UnsupportedModelError
from engine.convert.flux_layout import BLOCKS, DOUBLE_BLOCK, MLP_RATIO, SINGLE_BLOCK, TOP_LEVEL
from engine.convert.lora_export import (
    _kohya_alpha,
    _text_model_key,
    kohya_metadata,
    lora_progress,
    open_lora,
    refuse_embedding_loras,
    scale_folded_lora,
)

PREFIX = "transformer."
TEXT_PREFIX = "text_encoder."  # CLIP-L's LoRA in a diffusers Flux file
KOHYA_TEXT_PREFIX = "lora_te1_"
_BLOCK = re.compile(r"^(transformer_blocks|single_transformer_blocks)\.(\d+)\.(.+)$")


def export_flux_lora(out_dir: Path, transformer: Any, text_encoder: Any = None) -> Path:
    """Save the transformer's peft LoRA (and CLIP-L's, when given) as a diffusers Flux LoRA folder, the
    adapter configs in the metadata and each module's scale in its weights (see ``scale_folded_lora``)."""
    from diffusers import FluxPipeline

    layers: dict[str, Any] = {}
    for name, model in (("transformer", transformer), ("text_encoder", text_encoder)):
        if model is None:
            continue
        weights, config = scale_folded_lora(model, name)
        # One spelling of CLIP's modules that diffusers loads under transformers 4 and 5 (see _text_model_key).
        layers[f"{name}_lora_layers"] = {_text_model_key(k): v for k, v in weights.items()} if model is text_encoder else weights
        layers[f"{name}_lora_adapter_metadata"] = config
    FluxPipeline.save_lora_weights(out_dir, **layers)
    return Path(out_dir)


def original_name(module: str) -> tuple[str, int | None]:
    """(kohya module name, place in its fused module or None) for a diffusers transformer module."""
    match = _BLOCK.match(module)
    if match:
        kind, index, inner = match.groups()
        table = DOUBLE_BLOCK if kind == "transformer_blocks" else SINGLE_BLOCK
        if inner in table:
            name, place = table[inner]
            return f"lora_unet_{BLOCKS[kind]}_{index}_{name.replace('.', '_')}", place
    elif module in TOP_LEVEL:
        return f"lora_unet_{TOP_LEVEL[module].replace('.', '_')}", None
    raise UnsupportedModelError(f"the Flux LoRA trains '{module}', which has no place in the kohya/ComfyUI layout; "
                                "export it in diffusers format (lora_diffusers) instead")


def _adapter_config(metadata: Mapping[str, str], prefix: str = PREFIX) -> dict[str, Any]:
    packed = json.loads(metadata.get("lora_adapter_metadata", "{}"))
    return {key.removeprefix(prefix): value for key, value in packed.items() if key.startswith(prefix)}


def _modules(state_dict: Mapping[str, Any], prefix: str) -> dict[str, tuple[Any, Any]]:
    """{module: (lora_A, lora_B)} of the component of a diffusers LoRA whose keys start with ``prefix``."""
    return {
        key[len(prefix):-len(".lora_A.weight")]: (state_dict[key], state_dict[key.replace(".lora_A.", ".lora_B.")])
        for key in state_dict if key.startswith(prefix) and key.endswith(".lora_A.weight")
    }


def _check_components(state_dict: Mapping[str, Any], source: Path) -> None:
    if any(key.startswith(("lora_unet_", KOHYA_TEXT_PREFIX)) for key in state_dict):
        raise ConvertError(f"{source} is already in kohya format")
    others = sorted({key.split(".")[0] for key in state_dict if not key.startswith((PREFIX, TEXT_PREFIX))})
    if others:
        raise UnsupportedModelError(f"{source} has LoRA weights for {', '.join(others)}; only the Flux transformer's "
                                    "and CLIP-L's (text_encoder) convert")
    refuse_embedding_loras(state_dict, source)
    if not _modules(state_dict, PREFIX):
        raise ConvertError(f"{source} is not a diffusers-format Flux LoRA (no transformer.….lora_A.weight keys)")


def _clip_l_kohya(state_dict: Mapping[str, Any], metadata: Mapping[str, str]) -> dict[str, Any]:
    """CLIP-L's LoRA under kohya's ``lora_te1_`` names (``text_model`` spelled out, dots as underscores)."""
    import torch

    config = _adapter_config(metadata, TEXT_PREFIX)
    out: dict[str, Any] = {}
    for module, (a, b) in _modules(state_dict, TEXT_PREFIX).items():
        name = KOHYA_TEXT_PREFIX + _text_model_key(module).replace(".", "_")
        alpha = _kohya_alpha(config, a.shape[0], "text_encoder")
        out.update({f"{name}.lora_down.weight": a, f"{name}.lora_up.weight": b, f"{name}.alpha": torch.tensor(alpha)})
    return out


def _fused(parts: dict[int, tuple[Any, Any, float]], count: int) -> tuple[Any, Any, float]:
    """(down, up, alpha) of one fused module of ``count`` parts (q, k, v, and a single block's MLP input)
    from its trained parts {place: (A, B, scale)}."""
    import torch

    width = next(b.shape[0] if place < 3 else b.shape[0] // MLP_RATIO for place, (_, b, _) in parts.items())
    rows = [width] * 3 + [width * MLP_RATIO] * (count - 3)
    rank = sum(a.shape[0] for a, _, _ in parts.values())
    _, first, first_scale = next(iter(parts.values()))
    up = torch.zeros(sum(rows), rank, dtype=first.dtype)
    downs, column = [], 0
    for place in sorted(parts):
        a, b, _ = parts[place]
        top = sum(rows[:place])
        up[top : top + b.shape[0], column : column + a.shape[0]] = b
        downs.append(a)
        column += a.shape[0]
    return torch.cat(downs), up, first_scale * rank


def _refuse_mixed_scales(fused: Mapping[str, dict[int, tuple[Any, Any, float]]]) -> None:
    """One kohya alpha per fused module: its parts' LoRAs must share one scale."""
    if any(len({scale for _, _, scale in parts.values()}) > 1 for parts in fused.values()):
        raise UnsupportedModelError("the fused modules' LoRAs have different scales (per-module ranks or alphas), which "
                                    "one kohya alpha cannot express; keep the diffusers file")


def flux_lora_to_kohya(lora_dir_or_file: str | Path, out_file: str | Path, *, emit: Emit | None = None,
                       overwrite: bool = True) -> Path:
    """Convert a diffusers Flux LoRA (folder or .safetensors) to one kohya-layout .safetensors (a file already there
    is replaced only with ``overwrite``)."""
    import torch
    from safetensors.torch import save_file

    source, out_file, checkpoint = open_lora(lora_dir_or_file, out_file)
    config = _adapter_config(checkpoint.metadata)
    _check_components(checkpoint.state_dict, source)
    # Every refusal (a module kohya has no name for, DoRA, alphas it cannot express) before the conversion is announced.
    out: dict[str, Any] = _clip_l_kohya(checkpoint.state_dict, checkpoint.metadata)
    fused: dict[str, dict[int, tuple[Any, Any, float]]] = {}
    trained: dict[str, Any] = {}  # each fused module's parts apart, whose rank and alpha the metadata states
    for module, (a, b) in _modules(checkpoint.state_dict, PREFIX).items():
        name, place = original_name(module)
        rank = a.shape[0]
        alpha = _kohya_alpha(config, rank, "transformer")
        if place is None:
            out.update({f"{name}.lora_down.weight": a, f"{name}.lora_up.weight": b, f"{name}.alpha": torch.tensor(alpha)})
        else:
            fused.setdefault(name, {})[place] = (a, b, alpha / rank)
            trained.update({f"{name}_{place}.lora_down.weight": a, f"{name}_{place}.alpha": torch.tensor(alpha)})
    _refuse_mixed_scales(fused)
    unfused = dict(out)
    progress = lora_progress(emit, source, out_file, "kohya Flux LoRA")
    for name, parts in fused.items():
        down, up, alpha = _fused(parts, 4 if name.endswith("linear1") else 3)
        out.update({f"{name}.lora_down.weight": down, f"{name}.lora_up.weight": up, f"{name}.alpha": torch.tensor(alpha)})
    progress.step()
    metadata = kohya_metadata("flux1", out, "networks.lora_flux", trained={**unfused, **trained})
    with atomic_file(out_file, overwrite=overwrite) as tmp:
        save_file({k: v.contiguous() for k, v in out.items()}, str(tmp), metadata=metadata)
    progress.step()
    progress.finish()
    return out_file
