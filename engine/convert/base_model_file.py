"""Whether a .safetensors file named as model.pretrained is a base model dbtui trains, read from its header alone (for
the checks before a run, without reading its gigabytes)."""

from __future__ import annotations

from pathlib import Path


def not_a_base_model(path: Path) -> str | None:
    """What a .safetensors file is where it is no model dbtui trains (a LoRA, a lone VAE, the SDXL refiner, a quantized
    model): such a file passed `validate`, and the run failed only once it loaded it (a quantized one trained on
    noise)."""
    from safetensors import SafetensorError

    from engine.convert.detect import header_family
    from engine.convert.weight_dtypes import header_integer_weights

    try:
        family, quantized = header_family(path), header_integer_weights(path)
    except (OSError, ValueError, SafetensorError):
        return None  # damage inside the header: the load says what it is
    if quantized or family.supported:
        return quantized
    return (f"'{path}': {family.description}; model.pretrained takes a whole base model: a diffusers folder, a "
            ".safetensors/.ckpt checkpoint, or a hub id")
