"""A frozen linear layer whose weight is stored in float8 (e4m3fn) and upcast for each product.

Storage only: the products run in the compute dtype, so any device works (torch casts fp8 on the
CPU as on every GPU) and no fp8-capable GPU is needed. The cost is the rounding of the frozen
base to fp8's 3-bit mantissa (about 2.6 % relative error per tensor, against bf16's 0.2 %) and
one cast per layer in each direction of every step.

Each weight is stored divided by one per-tensor scale (its largest magnitude over fp8's largest
value), so that small weights keep fp8's normal range instead of its coarse subnormals: on
Gaussian weights of std 0.01 a plain cast errs by 5.7 %, the scaled one by 2.6 %.

Hand-written rather than diffusers' ``enable_layerwise_casting``, measured on diffusers 0.42:
its hook casts the whole layer up before the forward and back after, but autograd keeps the
upcast weight for the backward product, so without gradient checkpointing every layer's
compute-dtype weight stays alive until the backward pass reaches it; and a later
``Module.to(dtype=...)`` (which the trainer does after quantizing) upcasts every stored weight
at once. Here the backward pass upcasts the weight again, as bitsandbytes' layers do, and keeps
only the fp8 bytes.
"""

from __future__ import annotations

from typing import Any

import torch

FP8 = torch.float8_e4m3fn
FP8_MAX = torch.finfo(FP8).max


def to_fp8(weight: torch.Tensor) -> tuple[torch.Tensor, float]:
    """(the weight's fp8 bytes as uint8, its scale): ``weight ≈ bytes.view(FP8) * scale``."""
    largest = weight.detach().abs().max().item()
    scale = largest / FP8_MAX if largest > 0 else 1.0
    # Clamped because a division that lands a hair above FP8_MAX would cast to NaN (e4m3fn has no inf).
    scaled = (weight.detach().float() / scale).clamp_(-FP8_MAX, FP8_MAX)
    return scaled.to(FP8).view(torch.uint8), scale


def upcast(stored: torch.Tensor, scale: float, dtype: torch.dtype) -> torch.Tensor:
    """The weight back in ``dtype`` from its fp8 bytes, as a fresh tensor."""
    return stored.view(FP8).to(dtype).mul_(scale)


class _UpcastProduct(torch.autograd.Function):
    """``x @ W.T + b`` with W upcast from fp8 in each direction and never saved: only the bytes are."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, stored: torch.Tensor, scale: float, dtype: torch.dtype,
                bias: torch.Tensor | None) -> torch.Tensor:
        ctx.save_for_backward(stored)
        ctx.scale = scale
        # Under autocast, linear casts x and W as it would for the layer this one replaced.
        return torch.nn.functional.linear(x, upcast(stored, scale, dtype), bias)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None, None, None]:
        (stored,) = ctx.saved_tensors
        return grad @ upcast(stored, ctx.scale, grad.dtype), None, None, None, None


class Float8Linear(torch.nn.Linear):
    """A frozen ``nn.Linear`` holding its weight as fp8 bytes, computing as the ``compute_dtype`` layer it
    replaces: the same input and output dtypes, under autocast or not (bitsandbytes' layers instead cast
    the input to their compute dtype and the output back, so under autocast they return fp32 where
    a bf16 layer returns bf16, and the activations saved after them take twice the room).

    The bytes are a uint8 ``weight``, as bitsandbytes keeps its quantized weights: ``Module.to(dtype=...)``
    converts every floating-point tensor (fp8 ones too) and peft casts a new adapter to its base
    layer's floating dtype, and both leave integer tensors as they are. A subclass of ``nn.Linear``
    so that peft puts its LoRA layer on top, as on any linear layer.
    """

    def __init__(self, layer: torch.nn.Linear, compute_dtype: torch.dtype):
        torch.nn.Module.__init__(self)  # nn.Linear's own __init__ would allocate a full-size weight
        self.in_features, self.out_features = layer.in_features, layer.out_features
        self.compute_dtype = compute_dtype
        stored, self.scale = to_fp8(layer.weight)
        self.weight = torch.nn.Parameter(stored, requires_grad=False)
        self.bias = None if layer.bias is None else torch.nn.Parameter(layer.bias.detach().to(compute_dtype), requires_grad=False)

    def dequantized(self) -> torch.Tensor:
        """The weight as the products use it, in ``compute_dtype``."""
        return upcast(self.weight, self.scale, self.compute_dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _UpcastProduct.apply(x, self.weight, self.scale, self.compute_dtype, self.bias)
