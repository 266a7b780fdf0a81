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


def targeted_embeddings(model: Any, targets: list[str]) -> list[str]:
    """Those of ``targeted_layers`` that are embeddings (a CLIP's token or position embedding)."""
    import torch

    modules = dict(model.named_modules())
    return [name for name in targeted_layers(model, targets) if isinstance(modules[name], torch.nn.Embedding)]


def kohya_text_encoder_refusals(profile: Any) -> list[tuple[str, str]]:
    """(profile key, message) where the profile exports lora_kohya and its text-encoder LoRA targets reach an embedding
    layer, which no family's kohya layout names; told from the layer names alone, before any weights load. Every
    family's trained text encoders are CLIPs, whose layers are named alike at any size; the trainer asks the loaded
    encoders too (engine/training/trainable.py)."""
    training = profile.training
    if training.method != "lora" or not training.train_text_encoder or "lora_kohya" not in profile.saving.export:
        return []
    embeddings = targeted_embeddings(_layout_clip(), profile.lora.text_encoder_targets)
    if not embeddings:
        return []
    return [("training.lora.text_encoder_targets", kohya_refusal(embeddings, "leave the embedding layers out of them"))]


def _layout_clip() -> Any:
    """A one-layer CLIP text model on the meta device (no memory): the layer names of every CLIP text encoder."""
    import torch
    from transformers import CLIPTextConfig, CLIPTextModel

    with torch.device("meta"):
        return CLIPTextModel(CLIPTextConfig(vocab_size=8, hidden_size=8, intermediate_size=8, num_hidden_layers=1,
                                            num_attention_heads=1, max_position_embeddings=8, bos_token_id=0,
                                            eos_token_id=1, pad_token_id=1))


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
