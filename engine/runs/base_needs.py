"""What an export reads from the run's base model, said where that model is gone: a LoRA export is built on its
denoiser (and its text encoders where their LoRA trained) and holds no VAE; a whole model takes every part not
trained in full, a LoRA's merged into the base model's own."""

from __future__ import annotations

from typing import Any

LORA_FORMATS = frozenset({"lora_diffusers", "lora_kohya"})
# The parts as a user knows them, per family, in the family's text_encoder_names order.
DENOISERS = {"sd": "UNet", "sdxl": "UNet", "flux": "transformer"}
TEXT_ENCODERS = {"sd": ("text encoder",), "sdxl": ("CLIP-L text encoder", "OpenCLIP-bigG text encoder"),
                 "flux": ("CLIP-L text encoder", "T5-XXL text encoder")}


def base_model_needs(profile: Any, family_id: str | None) -> str:
    """A sentence on what the export of ``profile``'s run takes from its base model; ``family_id`` None: unknown."""
    from engine.models.registry import family_named
    from engine.training.trainable import weights_trained

    family = family_id if family_id in DENOISERS else None
    # Those that train when the profile trains "the text encoder" (Flux's T5 never does); unknown family: the first.
    trained_indexes = family_named(family).trained_text_encoders if family else (0,)
    denoiser = DENOISERS[family] if family else "UNet (a Flux model's transformer)"
    encoders = TEXT_ENCODERS.get(family or "", ("text encoders",))
    trained = [encoders[index] for index in trained_indexes if index < len(encoders)]
    lora_only = profile.training.method == "lora" and set(profile.saving.export) <= LORA_FORMATS
    if lora_only:
        parts = denoiser + (f" and {_joined(trained)}" if profile.training.train_text_encoder else "")
        return (f"The LoRA export writes only the trained LoRA (no VAE, no frozen text encoder), built on the base "
                f"model's {parts}, the layers its weights attach to, of the model the run trained on")
    # Only weights trained in full are in the checkpoint: a LoRA, the text encoders' too, is merged into the base
    # model's own (engine.training.outputs.full_precision_models).
    _, encoders_in_full = weights_trained(profile.training)
    from_base = [name for index, name in enumerate(encoders)
                 if not (encoders_in_full and index in trained_indexes)]
    taken = ["VAE", *from_base, "tokenizers", "scheduler"]
    if profile.training.method == "lora":
        taken.insert(0, denoiser)
    return f"A {', '.join(profile.saving.export)} export is the whole model: it takes from the base model its {_joined(taken)}"


def _joined(names: list[str]) -> str:
    return ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else names[0]
