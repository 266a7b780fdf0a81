"""Whether a .safetensors file named as model.pretrained is a base model dbtui trains, read from its header alone (for
the checks before a run, without reading its gigabytes)."""

from __future__ import annotations

from pathlib import Path


def not_a_base_model(path: Path, *, vae_given: bool = False) -> str | None:
    """What a .safetensors file is where it is no model dbtui trains (a LoRA, a lone VAE, the SDXL refiner, a quantized
    model, a checkpoint without its VAE or a text encoder): such a file passed `validate`, and the run failed only once
    it loaded it (a quantized one trained on noise). ``vae_given``: model.vae stands in for a VAE the file lacks."""
    from safetensors import SafetensorError

    from engine.convert.absent_parts import absent_parts_said
    from engine.convert.detect import detect_family, header_shapes
    from engine.convert.weight_dtypes import header_integer_weights

    try:
        shapes, quantized = header_shapes(path), header_integer_weights(path)
        # Its tensor names and shapes tell the family; what it predicts does not matter here.
        family = detect_family(shapes, prediction_type="epsilon")
    except (OSError, ValueError, SafetensorError):
        return None  # damage inside the header: the load says what it is
    if quantized:
        return quantized
    if not family.supported:
        return (f"'{path}': {family.description}; model.pretrained takes a whole base model: a diffusers folder, a "
                ".safetensors/.ckpt checkpoint, or a hub id")
    return absent_parts_said(f"'{path}'", shapes, family, vae_given=vae_given)
