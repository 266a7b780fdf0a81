"""fp8 weights of Flux files widened to bf16 on import.

ComfyUI users keep Flux.1's transformer and T5 in fp8: plain ``float8_e4m3fn`` (or ``e5m2``), or
ComfyUI's *scaled* fp8, where each weight was divided by a ``scale_weight`` before rounding and a
``scaled_fp8`` marker sits in the file. dbtui trains from bf16 (the trainer quantizes the frozen
base itself, model.quantize), so both come in as bf16; other dtypes stay as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SCALED_FP8 = "scaled_fp8"  # ComfyUI's marker of a file whose fp8 weights carry a scale each
SCALE_SUFFIXES = (".scale_weight", ".scale_input")


def widened(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """fp8 weights as bf16 (scaled fp8 multiplied by its scales), without the scales and the marker."""
    import torch

    out = {}
    for key, tensor in state_dict.items():
        if key.rpartition(".")[2] == SCALED_FP8 or key.endswith(SCALE_SUFFIXES):
            continue
        scale = state_dict.get(key.removesuffix(".weight") + ".scale_weight") if key.endswith(".weight") else None
        if scale is not None:
            tensor = tensor.float() * scale.float()
        if tensor.dtype in (torch.float8_e4m3fn, torch.float8_e5m2) or scale is not None:
            tensor = tensor.to(torch.bfloat16)
        out[key] = tensor
    return out
