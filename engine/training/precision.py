"""Choosing the precision that actually works on this machine, with a warning when it differs."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from engine.profile.precision_names import frozen_weights_name, maths_name


def effective_precision(requested: str) -> tuple[str, str | None]:
    """(precision to use, warning or None). CPUs train in fp32; pre-Ampere GPUs lack bf16."""
    if requested == "no":
        return "no", None
    if not torch.cuda.is_available():
        return "no", f"mixed_precision = \"{requested}\" needs a CUDA GPU; training in fp32 on the CPU."
    # Pre-Ampere cards (T4, RTX 20xx) only emulate bf16, slowly: that counts as none.
    if requested == "bf16" and not gpu_has_bf16():
        return "fp16", "this GPU has no bf16 support; training with fp16 instead (set precision.mixed_precision = \"fp16\")."
    return requested, None


def gpu_has_bf16() -> bool:
    """Whether this machine's GPU trains in bf16 (not a T4's emulation); the CPU does not."""
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)


def weight_dtype(precision: str) -> torch.dtype:
    """The dtype of frozen weights (``frozen_weights_name``): half precision saves memory where training is mixed."""
    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[frozen_weights_name(precision)]


def configure_gpu_maths(tf32: bool) -> None:
    """Process-wide CUDA maths settings, made once before any model runs.

    TF32 keeps fp32's range with a 10-bit mantissa in matrix products, which fine-tuning does not
    notice; cuDNN benchmarking picks the fastest convolution once per shape, and batches come in
    a handful of bucket shapes.
    """
    torch.set_float32_matmul_precision("high" if tf32 else "highest")
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cudnn.benchmark = True


@contextlib.contextmanager
def without_conv_benchmark() -> Iterator[None]:
    """cuDNN's heuristics, not its benchmark, for the passes before the steps (class images, caching).

    Benchmarking tries every convolution algorithm with a workspace as large as the free memory
    allows: on an H200 the VAE at 512 px then held 129 GB for a moment, so the peak said nothing of
    what the pass needs (the fit test reports it), and the caching pass meets each shape once.
    """
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before


def bf16_weights_in_force(requested: bool, precision: str) -> tuple[bool, str | None]:
    """(whether trained weights are kept in bf16, warning or None).

    bf16 weights need bf16 mixed precision, which the profile checks; ``precision`` is what this
    machine gives (``effective_precision``), and a CPU or a GPU without bf16 gives less.
    """
    if not requested or precision == "bf16":
        return requested, None
    return False, f"precision.bf16_weights needs bf16 mixed precision and this machine trains in {maths_name(precision)}: the trained weights stay fp32."


def fused_backward_in_force(requested: bool, precision: str) -> tuple[bool, str | None]:
    """(whether the optimizer steps inside the backward pass, warning or None).

    fp16 scales the loss and skips a step whose gradients overflowed, which it knows only after
    the backward pass, when the fused step has moved every weight already. The profile refuses
    fp16 with the fused step; a GPU without bf16 gives fp16 anyway, and then the step is not fused.
    """
    if requested and precision == "fp16":
        return False, "optimizer.fused_backward cannot run under fp16, which this GPU falls back to: the optimizer steps after the backward pass instead."
    return requested, None
