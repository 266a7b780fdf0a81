"""Whether a single file named as model.pretrained is a base model dbtui trains, read without its gigabytes (for the
checks before a run): a .safetensors file's header, a zip .ckpt's pickle with its tensors memory-mapped, not read."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engine.convert.file_format import Kind


def not_a_base_model(path: Path, kind: Kind = "safetensors", *, vae_given: bool = False) -> str | None:
    """What a .safetensors or zip .ckpt file is where it is no model dbtui trains (a LoRA, a lone VAE, the SDXL refiner,
    a quantized model, a checkpoint without its VAE or a text encoder, or without part of one: its UNet's
    output_blocks): such a file passed `validate`, and the run failed
    only once it loaded it (a quantized one trained on noise). ``vae_given``: model.vae stands in for a VAE the file
    lacks. A legacy (non-zip) pickle cannot be mapped: reading all of it is left to the load."""
    from safetensors import SafetensorError

    from engine.convert.errors import CheckpointReadError, IntegerWeightsError

    try:
        if kind == "safetensors":
            from engine.convert.detect import header_shapes
            from engine.convert.weight_dtypes import header_integer_weights

            shapes: Mapping[str, Any] = header_shapes(path)
            quantized = header_integer_weights(path)
        elif kind == "torch-zip" and not path.name.endswith(".safetensors"):  # so named, torch reads it unmapped
            from engine.convert.load_checkpoint import read_checkpoint
            from engine.convert.weight_dtypes import check_float_weights

            shapes, quantized = read_checkpoint(path).state_dict, None  # mmap: the storages are mapped, not read
            try:
                check_float_weights(str(path), shapes)
            except IntegerWeightsError as error:
                quantized = str(error)
        else:
            return None
        return quantized or _not_trained(path, shapes, vae_given)
    except (OSError, ValueError, SafetensorError, CheckpointReadError):
        return None  # damage inside the file: the load says what it is


def _not_trained(path: Path, shapes: Mapping[str, Any], vae_given: bool) -> str | None:
    from engine.convert.absent_parts import lacking_said
    from engine.convert.detect import detect_family

    # Its tensor names and shapes tell the family; what it predicts does not matter here.
    family = detect_family(shapes, prediction_type="epsilon")
    if not family.supported:
        return (f"'{path}': {family.description}; model.pretrained takes a whole base model: a diffusers folder, a "
                ".safetensors/.ckpt checkpoint, or a hub id")
    return lacking_said(f"'{path}'", shapes, family, vae_given=vae_given)
