"""Turning the ways a run can go wrong into advice instead of tracebacks."""

from __future__ import annotations

from typing import Any

from engine.errors import DbtuiError

NAN_ADVICE = (
    "use bf16 where the GPU supports it (precision.mixed_precision = \"bf16\"), keep the VAE in fp32, "
    "or lower optimizer.learning_rate"
)


class NonFiniteLossError(DbtuiError):
    """The loss became NaN or infinite: the weights would be garbage from here on."""

    advice = NAN_ADVICE


class OutOfMemoryAdviceError(DbtuiError):
    """The GPU ran out of memory; ``advice`` lists what to change."""

    def __init__(self, message: str, advice: str):
        super().__init__(message)
        self.advice = advice


def oom_advice(profile: Any) -> str:
    """What to turn on or down, from the profile's current settings, most effective first."""
    tips = []
    if not profile.precision.gradient_checkpointing:
        tips.append("turn on gradient checkpointing (precision.gradient_checkpointing = true)")
    if profile.precision.mixed_precision == "no":
        tips.append("use mixed precision (precision.mixed_precision = \"fp16\", or \"bf16\" on Ampere and newer)")
    if profile.optimizer.name in ("adamw", "lion"):
        tips.append(f"use the 8-bit optimizer (optimizer.name = \"{profile.optimizer.name}8bit\")")
    if profile.training.train_text_encoder:
        tips.append("stop training the text encoder (training.train_text_encoder = false)")
    if not profile.dataset.cache_latents:
        tips.append("cache latents (dataset.cache_latents = true)")
    if profile.training.train_batch_size > 1:
        tips.append(f"lower training.train_batch_size to {max(1, profile.training.train_batch_size // 2)} "
                    "and raise gradient_accumulation_steps to match")
    if profile.training.method == "full":
        tips.append("train a LoRA instead (training.method = \"lora\"): it fits 8 GB cards")
    if profile.dataset.resolution > 512:
        tips.append("lower dataset.resolution")
    return "; ".join(tips) or "this setup is already as lean as dbtui can make it: use a GPU with more memory"


def images_look_broken(images: list[Any]) -> bool:
    """True when every image is black (what NaN latents decode to)."""
    import numpy as np

    return bool(images) and all(np.asarray(image).max() <= 2 for image in images)
