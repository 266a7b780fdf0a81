"""Optimizer memory from the trainable parameters' shapes: the state each optimizer keeps, and its update's temporaries.

Each rule follows the state the optimizer's own code allocates (the versions dbtui installs):
- adamw (torch, fused on CUDA): exp_avg and exp_avg_sq in the parameter's dtype, and a 4-byte
  ``step`` tensor per parameter;
- adamw8bit / lion8bit (bitsandbytes): one byte per value per moment and a float32 absmax per
  block of 256 values, for tensors of at least 4,096 values; smaller tensors keep float32 moments;
  plus the shared quantization maps (256 float32 values per moment);
- lion (lion_pytorch): exp_avg;
- prodigy (prodigyopt, slice_p 1): s, p0 (a single value for a tensor that starts at zero, as
  LoRA's B matrices do), exp_avg when beta1 > 0, exp_avg_sq;
- adafactor (transformers, no first moment): for tensors of two or more dimensions, a row
  (shape[:-1]) and a column (shape[:-2] + shape[-1:]) of second moments; else a full one; and the
  0-d RMS tensor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from engine.errors import DbtuiError

BNB_MIN_8BIT_SIZE = 4096  # bitsandbytes' min_8bit_size default
BNB_BLOCK = 256  # bitsandbytes' block size for 8-bit optimizer states
BNB_QMAP_BYTES = 256 * 4  # one quantization map: 256 float32 values


@dataclass(frozen=True)
class ParamShape:
    shape: tuple[int, ...]
    itemsize: int  # bytes per value
    starts_at_zero: bool = False

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


def starts_at_zero(name: str) -> bool:
    """Whether the trained weight named ``name`` (a ``named_parameters`` name) is all zeros before the first step:
    LoRA's B matrices (peft's gaussian init), for which Prodigy keeps p0 as a single value."""
    return ".lora_B." in name


def _adamw(p: ParamShape) -> int:
    return 2 * p.numel * p.itemsize + 4


def _eight_bit(p: ParamShape, moments: int) -> int:
    if p.numel < BNB_MIN_8BIT_SIZE:
        return moments * p.numel * 4
    return moments * (p.numel + 4 * math.ceil(p.numel / BNB_BLOCK))


def _prodigy(p: ParamShape, beta1: float) -> int:
    size = p.numel * p.itemsize
    p0 = p.itemsize if p.starts_at_zero else size
    return size + p0 + (size if beta1 > 0 else 0) + size


def _adafactor(p: ParamShape) -> int:
    if len(p.shape) >= 2:
        values = math.prod(p.shape[:-1]) + math.prod(p.shape[:-2]) * p.shape[-1]
    else:
        values = p.numel
    return values * p.itemsize + 4  # + the RMS scalar (float32)


class NoOptimizerRuleError(DbtuiError):
    """The meter has no rule for an optimizer's state."""


def state_bytes(name: str, params: list[ParamShape], *, beta1: float = 0.9) -> int:
    """Bytes of the state optimizer ``name`` keeps for ``params`` after its first step."""
    if name == "adamw":
        return sum(_adamw(p) for p in params)
    if name in ("adamw8bit", "lion8bit"):
        moments = 2 if name == "adamw8bit" else 1
        quantized = any(p.numel >= BNB_MIN_8BIT_SIZE for p in params)
        return sum(_eight_bit(p, moments) for p in params) + (moments * BNB_QMAP_BYTES if quantized else 0)
    if name == "lion":
        return sum(p.numel * p.itemsize for p in params)
    if name == "prodigy":
        return sum(_prodigy(p, beta1) for p in params)
    if name == "adafactor":
        return sum(_adafactor(p) for p in params)
    raise NoOptimizerRuleError(f"the memory meter has no rule for optimizer '{name}' yet; estimate with adamw to see the rest")


# Full-size temporaries one parameter's update holds at once, read from each update's code:
# fused AdamW and bitsandbytes update in place; Lion's ``exp_avg.clone()…add(grad)`` and
# Adafactor's and Prodigy's squared-gradient and update tensors hold two at a time.
UPDATE_TEMPORARIES = {"adamw": 0, "adamw8bit": 0, "lion8bit": 0, "lion": 2, "prodigy": 2, "adafactor": 2}


def update_temporaries(name: str, params: list[ParamShape]) -> int:
    """Bytes the optimizer's update allocates beyond its state, at most, for the largest parameter."""
    largest = max((p.numel * max(p.itemsize, 4) for p in params), default=0)
    return UPDATE_TEMPORARIES[name] * largest
