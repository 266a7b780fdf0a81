"""Choosing the precision that actually works on this machine, with a warning when it differs."""

from __future__ import annotations

import torch


def effective_precision(requested: str) -> tuple[str, str | None]:
    """(precision to use, warning or None). CPUs train in fp32; pre-Ampere GPUs lack bf16."""
    if requested == "no":
        return "no", None
    if not torch.cuda.is_available():
        return "no", f"mixed_precision = \"{requested}\" needs a CUDA GPU; training in fp32 on the CPU."
    # Pre-Ampere cards (T4, RTX 20xx) only emulate bf16, slowly: that counts as none.
    if requested == "bf16" and not torch.cuda.is_bf16_supported(including_emulation=False):
        return "fp16", "this GPU has no bf16 support; training with fp16 instead (set precision.mixed_precision = \"fp16\")."
    return requested, None


def weight_dtype(precision: str) -> torch.dtype:
    """The dtype of frozen weights: half precision saves memory where training is mixed."""
    return {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision, torch.float32)


def configure_gpu_maths(tf32: bool) -> None:
    """Process-wide CUDA maths settings, made once before any model runs.

    TF32 keeps fp32's range with a 10-bit mantissa in matrix products, which fine-tuning does not
    notice; cuDNN benchmarking picks the fastest convolution once per shape, and batches come in
    a handful of bucket shapes.
    """
    torch.set_float32_matmul_precision("high" if tf32 else "highest")
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cudnn.benchmark = True
