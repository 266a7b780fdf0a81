"""Presets: partial profiles merged into the draft. Values follow the hardware verdict's tiers
and the usual DreamBooth advice (person/object: prior preservation; style: no class images).

The SD presets keep the draft's resolution; the SDXL ones set SDXL's 1024 px and bf16 (on a GPU
without bf16 the trainer falls back to fp16 and keeps the VAE in fp32, since SDXL's VAE
overflows in fp16). profiles/sdxl-*.toml explain the same choices.
"""

from __future__ import annotations

from typing import Any

PRESETS: dict[str, dict[str, Any]] = {
    "cpu-demo": {
        "dataset": {"resolution": 64}, "training": {"method": "full", "lora": None, "max_train_steps": 30},
        "precision": {"mixed_precision": "no", "gradient_checkpointing": False}, "optimizer": {"name": "adamw"},
        "saving": {"export": ["diffusers"]},
    },
    "lora": {
        "training": {"method": "lora", "lora": {"rank": 16, "alpha": 16.0}, "train_text_encoder": False},
        # 8-bit Adam like profiles/sd15-lora-8gb.toml: the tier under 8 GB takes every memory saver.
        "optimizer": {"name": "adamw8bit", "learning_rate": 1e-4},
        "precision": {"mixed_precision": "fp16", "gradient_checkpointing": True},
        "dataset": {"cache_latents": True}, "saving": {"export": ["lora_diffusers"], "unet_half": False},
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
    "sdxl-lora": {
        "dataset": {"resolution": 1024, "cache_latents": True},
        "training": {"method": "lora", "lora": {"rank": 16, "alpha": 16.0}, "train_text_encoder": False},
        "optimizer": {"name": "adamw8bit", "learning_rate": 1e-4, "lr_scheduler": "constant", "lr_warmup_steps": 0},
        "precision": {"mixed_precision": "bf16", "gradient_checkpointing": True},
        "saving": {"export": ["lora_diffusers", "lora_kohya"], "unet_half": False},
    },
    "sdxl-full": {
        "dataset": {"resolution": 1024, "cache_latents": True},
        "training": {"method": "full", "lora": None, "train_text_encoder": False},
        # Adafactor keeps factored second moments and no first moment: far less memory than AdamW's two
        # full-size states, which is what lets the 2.6 B-parameter UNet train on a 24 GB card.
        "optimizer": {"name": "adafactor", "learning_rate": 1e-6, "lr_scheduler": "constant_with_warmup", "lr_warmup_steps": 100},
        "precision": {"mixed_precision": "bf16", "gradient_checkpointing": True},
        "saving": {"export": ["diffusers", "safetensors"], "unet_half": True},
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
    "sdxl-lora": "SDXL LoRA, 1024 px (10 GB and up)",
    "sdxl-full": "SDXL full fine-tune, 1024 px, Adafactor (24 GB and up)",
    "person": "Person / object DreamBooth (prior preservation)",
    "style": "Style / native fine-tune (no class images)",
}
