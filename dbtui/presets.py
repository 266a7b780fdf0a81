"""Presets: partial profiles merged into the draft. Values follow the hardware verdict's tiers
and the usual DreamBooth advice (person/object: prior preservation; style: no class images)."""

from __future__ import annotations

from typing import Any

PRESETS: dict[str, dict[str, Any]] = {
    "cpu-demo": {
        "dataset": {"resolution": 64}, "training": {"method": "full", "max_train_steps": 30},
        "precision": {"mixed_precision": "no", "gradient_checkpointing": False}, "optimizer": {"name": "adamw"},
    },
    "lora": {
        "training": {"method": "lora", "lora": {"rank": 16, "alpha": 16.0}, "train_text_encoder": False},
        "optimizer": {"name": "adamw", "learning_rate": 1e-4},
        "precision": {"mixed_precision": "fp16", "gradient_checkpointing": True},
        "dataset": {"cache_latents": True}, "saving": {"export": ["lora_diffusers"]},
    },
    "full-8bit": {
        "training": {"method": "full", "lora": None, "train_text_encoder": False},
        "optimizer": {"name": "adamw8bit", "learning_rate": 2e-6},
        "precision": {"mixed_precision": "fp16", "gradient_checkpointing": True},
        "dataset": {"cache_latents": True}, "saving": {"export": ["diffusers"]},
    },
    "full": {
        "training": {"method": "full", "lora": None, "train_text_encoder": False},
        "optimizer": {"name": "adamw", "learning_rate": 2e-6},
        "precision": {"mixed_precision": "fp16", "gradient_checkpointing": True}, "saving": {"export": ["diffusers"]},
    },
    "full-text-encoder": {
        "training": {"method": "full", "lora": None, "train_text_encoder": True},
        "optimizer": {"name": "adamw", "learning_rate": 1e-6},
        "precision": {"mixed_precision": "bf16", "gradient_checkpointing": False}, "saving": {"export": ["diffusers"]},
    },
    "person": {"prior": {"enabled": True, "loss_weight": 1.0}, "dataset": {"hflip": False}},
    "style": {"prior": {"enabled": False}, "dataset": {"hflip": True}},
}

PRESET_LABELS = {
    "cpu-demo": "CPU demo (tiny model, fp32)",
    "lora": "LoRA (under 8 GB)",
    "full-8bit": "Full fine-tune, 8-bit Adam (8–16 GB)",
    "full": "Full fine-tune (16–24 GB)",
    "full-text-encoder": "Full + text encoder (24 GB and up)",
    "person": "Person / object DreamBooth (prior preservation)",
    "style": "Style / native fine-tune (no class images)",
}
