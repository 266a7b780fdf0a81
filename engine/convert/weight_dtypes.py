"""Refuse a checkpoint whose model weights are integers: a quantized file (int8, or bitsandbytes' NF4 packed into
uint8) or one whose header was rewritten. The converters cast whatever they are given to float, so such a file
converted "successfully" into a model of noise (weights around ±1e9).

Real SD1.x/SD2.x/SDXL/Flux.1 files hold integers only as buffers: CLIP's ``position_ids`` (int64), the EMA's
``model_ema.num_updates`` (a scalar), BatchNorm's ``num_batches_tracked``, and, in ComfyUI's all-in-one files, a
SentencePiece tokenizer as ``spiece_model`` (uint8). Those, and any integer scalar (a step or epoch counter), stay
allowed. fp8 is floating point and passes (a Flux file's fp8 is widened to bf16 on import).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engine.convert.errors import IntegerWeightsError

INTEGER_BUFFERS = frozenset({"position_ids", "num_batches_tracked", "num_updates", "spiece_model"})
# safetensors' names of its integer dtypes, in torch's words.
SAFETENSORS_INTEGERS = {"BOOL": "bool", "U8": "uint8", "I8": "int8", "U16": "uint16", "I16": "int16", "U32": "uint32",
                        "I32": "int32", "U64": "uint64", "I64": "int64"}


def integer_weights_message(name: str, integers: Mapping[str, tuple[str, int]]) -> str | None:
    """What is wrong with file ``name`` whose non-floating-point tensors are ``integers`` ({key: (dtype, number of
    dimensions)}), or None where they are all buffers a real model holds."""
    weights = {key: dtype for key, (dtype, ndim) in integers.items()
               if ndim > 0 and key.rpartition(".")[2] not in INTEGER_BUFFERS}
    if not weights:
        return None
    dtypes = ", ".join(sorted(set(weights.values())))
    example = next(iter(weights))
    more = f" and {len(weights) - 1} more" if len(weights) > 1 else ""
    return (f"{name} holds integer ({dtypes}) weights ({example}{more}): a quantized model dbtui cannot import (its "
            "weights would come out as noise); give the model's original fp16, bf16 or fp32 file (for Flux.1, an fp8 "
            "file imports too)")


def check_float_weights(name: str, state_dict: Mapping[str, Any]) -> None:
    """Raise :class:`IntegerWeightsError` where the tensors read from file ``name`` hold integer weights."""
    integers = {key: (str(tensor.dtype).removeprefix("torch."), tensor.dim()) for key, tensor in state_dict.items()
                if not (tensor.is_floating_point() or tensor.is_complex())}
    message = integer_weights_message(name, integers)
    if message:
        raise IntegerWeightsError(message)


def header_integer_weights(path: Path) -> str | None:
    """:func:`integer_weights_message` for a .safetensors file, read from its header alone (for the checks before a
    run)."""
    from safetensors import safe_open

    integers = {}
    with safe_open(str(path), framework="numpy") as file:  # "pt" imports torch (seconds) into the wizard
        for key in file.keys():
            tensor = file.get_slice(key)
            if tensor.get_dtype() in SAFETENSORS_INTEGERS:
                integers[key] = (SAFETENSORS_INTEGERS[tensor.get_dtype()], len(tensor.get_shape()))
    return integer_weights_message(str(path), integers)
