"""A frozen denoiser stored in 4-bit NF4 or 8-bit int8 (bitsandbytes) or in fp8, for LoRA training on less memory.

diffusers' ``BitsAndBytesConfig`` refuses to quantize without a GPU, so the layers are replaced
here with bitsandbytes' own ``Linear4bit`` / ``Linear8bitLt``, which quantize their weights when
moved to a device (the CPU included) and run there. peft puts its LoRA layers on top of them.

Only the linear layers inside the model's repeated blocks (its ``nn.ModuleList``s: Flux's double-
and single-stream blocks, a UNet's down/mid/up blocks) are quantized, where nearly all the weights
are; the input embedders, the time and guidance embeddings and the output layer are small and
keep full precision, as the usual QLoRA recipes do.

fp8 needs no bitsandbytes: its layers (engine/models/fp8_linear.py) store the weights in
float8 and compute in the weight dtype, on any device.
"""

from __future__ import annotations

from typing import Any, Literal

import torch

from engine.errors import DbtuiError

Quantization = Literal["nf4", "int8", "fp8"]
QUANTIZATIONS: tuple[Quantization, ...] = ("nf4", "int8", "fp8")


class QuantizeError(DbtuiError):
    """The base model cannot be quantized here."""


def _bitsandbytes() -> Any:
    from engine.support.deferred_import import load

    try:
        import bitsandbytes

        # Deferred (engine/runs/in_process.py): its code, and so a broken install's error, runs only now.
        load(bitsandbytes)
    except Exception as error:  # noqa: BLE001 - a broken install (its CUDA setup failing) means the same to the user
        raise QuantizeError(f"model.quantize needs bitsandbytes, which cannot be loaded here ({error}): pip install "
                            "bitsandbytes, or set model.quantize = \"fp8\" (no library needed) or remove it") from None
    return bitsandbytes


def block_linear_layers(model: torch.nn.Module) -> list[tuple[torch.nn.Module, str, torch.nn.Linear]]:
    """(parent, attribute, layer) for every plain ``nn.Linear`` inside one of the model's ``ModuleList``s."""
    found: dict[int, tuple[torch.nn.Module, str, torch.nn.Linear]] = {}
    for blocks in (m for m in model.modules() if isinstance(m, torch.nn.ModuleList)):
        for parent in blocks.modules():
            for name, child in parent.named_children():
                if type(child) is torch.nn.Linear:
                    found[id(child)] = (parent, name, child)
    return list(found.values())


def _quantized(bnb: Any, layer: torch.nn.Linear, kind: Quantization, compute_dtype: torch.dtype) -> torch.nn.Module:
    bias = layer.bias is not None
    if kind == "nf4":
        new = bnb.nn.Linear4bit(layer.in_features, layer.out_features, bias=bias, compute_dtype=compute_dtype,
                                quant_type="nf4", device="meta")
        # Quantized from the compute dtype, so each layer dequantizes straight into it.
        new.weight = bnb.nn.Params4bit(layer.weight.data.to(compute_dtype), requires_grad=False, quant_type="nf4")
        # On a CPU with AVX512-BF16, an eval-mode forward (a preview) repacks the weight for inference,
        # and the next training step then fails in bitsandbytes: keep the one layout that trains.
        new.support_avx512bf16_for_cpu = False
    else:
        new = bnb.nn.Linear8bitLt(layer.in_features, layer.out_features, bias=bias, has_fp16_weights=False,
                                  threshold=6.0, device="meta")
        new.weight = bnb.nn.Int8Params(layer.weight.data, requires_grad=False, has_fp16_weights=False)
    if bias:
        new.bias = torch.nn.Parameter(layer.bias.data.to(compute_dtype), requires_grad=False)
    return new


@torch.no_grad()
def quantize_blocks(model: torch.nn.Module, kind: Quantization, *, compute_dtype: torch.dtype, device: torch.device) -> int:
    """Replace the model's block linear layers by quantized ones on ``device``; returns how many.

    Each layer is quantized as it moves to ``device``, one at a time, so the device never holds
    the unquantized model. Layers quantized already are left alone: a second call changes nothing.
    """
    if kind not in QUANTIZATIONS:
        raise QuantizeError(f"model.quantize must be one of {', '.join(QUANTIZATIONS)}, not {kind!r}")
    if kind == "fp8":
        from engine.models.fp8_linear import Float8Linear

        def quantized(layer: torch.nn.Linear) -> torch.nn.Module:
            return Float8Linear(layer, compute_dtype)
    else:
        bnb = _bitsandbytes()

        def quantized(layer: torch.nn.Linear) -> torch.nn.Module:
            return _quantized(bnb, layer, kind, compute_dtype)
    layers = block_linear_layers(model)
    for parent, name, layer in layers:
        setattr(parent, name, quantized(layer).to(device))
    return len(layers)


def quantized_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The model's bitsandbytes 4- and 8-bit layers (inside peft's LoRA wrappers too)."""
    import bitsandbytes as bnb

    return [m for m in model.modules() if isinstance(m, (bnb.nn.Linear4bit, bnb.nn.Linear8bitLt))]
