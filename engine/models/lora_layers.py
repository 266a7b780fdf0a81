"""Which layers of a model LoRA targets reach, and the rule for those a lora_kohya export cannot hold.

Below training, so that a family's ``check_profile`` (before any weights load) and the trainer's check of the
loaded model (engine/training/trainable.py) ask the same rule and say the same thing.
"""

from __future__ import annotations

from typing import Any


def layer_names(models: list[Any]) -> list[str]:
    """The full names of the layers LoRA can wrap (linear, convolution, embedding), in the models' order."""
    import torch

    kinds = (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d, torch.nn.Embedding)
    return [name for model in models for name, module in model.named_modules() if isinstance(module, kinds)]


def targeted_layers(model: Any, targets: list[str]) -> list[str]:
    """The full names of ``model``'s layers that LoRA on ``targets`` wraps, by peft's own matching."""
    from peft import LoraConfig
    from peft.tuners.tuners_utils import check_target_module_exists

    config = LoraConfig(target_modules=list(targets))
    return [name for name in layer_names([model]) if check_target_module_exists(config, name)]


def kohya_unplaced_targets(family: Any, denoiser: Any, targets: list[str]) -> str | None:
    """Why a lora_kohya export cannot hold a LoRA on ``targets`` of ``denoiser`` (the model, or one built
    with its layer names), else None."""
    unplaced = family.kohya_unplaced(targeted_layers(denoiser, targets))
    return kohya_refusal(unplaced, "name narrower targets") if unplaced else None


def kohya_refusal(layers: list[str], advice: str) -> str:
    """What to say of a LoRA on ``layers``, which the kohya format has no place for; ``advice``: what else to do."""
    few = ", ".join(layers[:4]) + (f" and {len(layers) - 4} more" if len(layers) > 4 else "")
    return (f"LoRA would train {few}, which the kohya/ComfyUI format of saving.export's lora_kohya has no place for; "
            f"{advice}, or export lora_diffusers only")
