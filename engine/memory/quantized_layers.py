"""A quantized base (``model.quantize``) as the meter counts it: the bytes its layers store, on fake tensors.

bitsandbytes' ``Params4bit`` and ``Int8Params`` are tensor subclasses that quantize real data when
they move to a device; they cannot wrap the meter's fake tensors, and the fp8 layers scale by the
weights' real values. So the meter puts a stand-in in place of each layer that
engine/models/quantize.py quantizes (the same layers, found by the same function), holding as
many bytes as the quantized layer stores and allocating what its kernels allocate in a training
step: the layer's weight dequantized into the compute dtype for the forward product, freed at
once, and dequantized again for the backward product (bitsandbytes saves no unpacked weight for
the backward pass, nor do the fp8 layers).

Bytes per layer of ``n`` weights, as bitsandbytes 0.50 and the fp8 layers store them (checked
against real layers in tests/test_flux_meter.py):
- nf4 (``Params4bit``, blocks of 64, absmax quantized again): n/2 packed bytes, one uint8 absmax
  per block, one float32 per 256 of those, the 256-value table of that second quantization, the
  16-value NF4 table and its float32 offset;
- int8 (``Int8Params``): one byte per weight and a float32 scale per output row;
- fp8 (engine/models/fp8_linear.py): one byte per weight (its per-tensor scale is a Python float).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from engine.models.quantize import Quantization, block_linear_layers

NF4_BLOCK = 64
NESTED_BLOCK = 256
NESTED_TABLE_BYTES = 256 * 4
NF4_TABLE_BYTES = 16 * 4
OFFSET_BYTES = 4


def quantized_bytes(out_features: int, in_features: int, kind: Quantization) -> int:
    """Bytes kept for one ``out_features`` × ``in_features`` weight quantized as ``kind``."""
    weights = out_features * in_features
    if kind == "fp8":
        return weights
    if kind == "int8":
        return weights + 4 * out_features
    blocks = math.ceil(weights / NF4_BLOCK)
    return (math.ceil(weights / 2) + blocks + 4 * math.ceil(blocks / NESTED_BLOCK)
            + NESTED_TABLE_BYTES + NF4_TABLE_BYTES + OFFSET_BYTES)


class _DequantizedProduct(torch.autograd.Function):
    """``x @ W.T`` with W made afresh (dequantized) in each direction and never saved."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, shape: tuple[int, int], dtype: torch.dtype, bias: torch.Tensor | None) -> torch.Tensor:
        ctx.shape = shape
        return torch.nn.functional.linear(x, x.new_empty(shape, dtype=dtype), bias)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None, None]:
        return grad @ grad.new_empty(ctx.shape), None, None, None


class QuantizedLinearStandIn(torch.nn.Linear):
    """A frozen linear layer holding a quantized layer's bytes as one uint8 ``weight``.

    A subclass of ``nn.Linear`` so that peft wraps it with a LoRA layer as it wraps bitsandbytes'
    layers (peft sees a uint8 weight, as with theirs, and keeps the adapter in fp32).
    """

    def __init__(self, layer: torch.nn.Linear, kind: Quantization, compute_dtype: torch.dtype):
        torch.nn.Module.__init__(self)  # no full-size weight: nn.Linear's own __init__ would allocate one
        self.in_features, self.out_features = layer.in_features, layer.out_features
        self.compute_dtype = compute_dtype
        # bitsandbytes casts the input to its compute dtype and the output back; the fp8 layer does not.
        self.casts = kind != "fp8"
        size = quantized_bytes(layer.out_features, layer.in_features, kind)
        self.weight = torch.nn.Parameter(torch.empty(size, dtype=torch.uint8, device=layer.weight.device), requires_grad=False)
        self.bias = layer.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (self.out_features, self.in_features)
        if not self.casts:
            return _DequantizedProduct.apply(x, shape, self.compute_dtype, self.bias)
        bias = None if self.bias is None else self.bias.to(self.compute_dtype)
        return _DequantizedProduct.apply(x.to(self.compute_dtype), shape, self.compute_dtype, bias).to(x.dtype)


def stand_in_quantized(model: torch.nn.Module, kind: Quantization, *, compute_dtype: torch.dtype) -> int:
    """Replace the layers ``quantize_blocks`` would quantize by stand-ins; returns how many."""
    layers = block_linear_layers(model)
    for parent, name, layer in layers:
        setattr(parent, name, QuantizedLinearStandIn(layer, kind, compute_dtype))
    return len(layers)


def nf4_saving(layers: list[torch.nn.Linear], held: Quantization | None) -> int:
    """Bytes that NF4 takes off ``layers``, those ``quantize_blocks`` quantizes: as held now (quantized as ``held``,
    or where None in their weights' own dtype, as the trainer set them up) less as NF4 stores them. Neither their
    biases nor any other weight (a LoRA's, the embeddings, the norms) is quantized."""

    def now(layer: torch.nn.Linear) -> int:
        if held:
            return quantized_bytes(layer.out_features, layer.in_features, held)
        return layer.weight.numel() * layer.weight.element_size()

    return sum(now(layer) - quantized_bytes(layer.out_features, layer.in_features, "nf4") for layer in layers)
