"""What to turn on or down when a profile needs more GPU memory than the card has: from its own
settings, most effective first. Said when a run runs out of memory, and when the meter finds no
card size that holds it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.memory.estimate import MemoryEstimate

# The estimate's parts (MemoryEstimate) a saver can shrink; "lora" is the LoRA's own weights, inside "weights".
_ALL = frozenset({"weights", "gradients", "optimizer_state", "activations", "caches"})
# fp32 weights per byte of optimizer state (engine/memory/optimizer_state.py): the LoRA's size read from its state, as
# its gradients may not be alive at the peak. Adafactor's factored state says nothing of it.
_WEIGHTS_PER_STATE_BYTE = {"adamw": 0.5, "adamw8bit": 2.0, "lion": 1.0, "lion8bit": 4.0, "prodigy": 1.0}


@dataclass(frozen=True)
class Saver:
    """A setting to write, and the parts of the meter's estimate it can shrink, at most to nothing."""

    tip: str
    shrinks: frozenset[str]


def memory_advice(profile: Any) -> str:
    """The savers this profile does not use yet, as settings to write; one sentence when it uses them all."""
    return "; ".join(saver.tip for saver in savers(profile)) or "this setup is already as lean as dbtui can make it: use a GPU with more memory"


def most_saved(profile: Any, estimate: MemoryEstimate) -> int:
    """Bytes of the step's peak that all of the profile's savers together could take away at most: the parts they
    shrink, each counted once, whole. When even that leaves the steps too large for a card, no setting helps."""
    parts = frozenset().union(*(saver.shrinks for saver in savers(profile)))
    ratio = _WEIGHTS_PER_STATE_BYTE.get(profile.optimizer.name)
    lora = max(estimate.gradients, int(estimate.optimizer_state * ratio)) if ratio else estimate.weights
    sizes = {"weights": estimate.weights, "gradients": estimate.gradients, "optimizer_state": estimate.optimizer_state,
             "activations": estimate.activations, "caches": estimate.caches, "lora": lora}
    # The LoRA's weights are inside "weights": counted once when that is counted whole.
    return sum(sizes[part] for part in parts if not (part == "lora" and "weights" in parts))


def savers(profile: Any) -> list[Saver]:
    """The savers this profile does not use yet, most effective first."""
    from engine.model_info import likely_family

    found: list[Saver] = []

    def add(tip: str, *shrinks: str) -> None:
        found.append(Saver(tip, frozenset(shrinks)))

    # Flux's frozen 12B transformer is most of its memory (23 GB in bf16): a quantized base is the saver that counts.
    flux = likely_family(profile.model.pretrained) == "flux"
    quantize = "load the frozen base quantized (model.quantize = \"nf4\": a quarter of its weights' memory)"
    if flux and profile.training.method == "lora" and not profile.model.quantize:
        add(quantize, "weights")
    if not profile.precision.gradient_checkpointing:
        add("turn on gradient checkpointing (precision.gradient_checkpointing = true)", "activations")
    if profile.precision.mixed_precision == "no":
        add("use mixed precision (precision.mixed_precision = \"fp16\", or \"bf16\" on Ampere and newer)", "weights", "activations", "caches")
    if profile.optimizer.name in ("adamw", "lion"):
        add(f"use the 8-bit optimizer (optimizer.name = \"{profile.optimizer.name}8bit\")", "optimizer_state")
    # The profile rules let bf16 weights train only in bf16, and refuse the fused step under fp16: the tip says so.
    in_bf16 = "" if profile.precision.mixed_precision == "bf16" else "precision.mixed_precision = \"bf16\", "
    if profile.training.method == "full":
        if not profile.precision.bf16_weights:
            add(f"keep the weights in bf16, with no fp32 copy ({in_bf16}precision.bf16_weights = true, on Ampere and newer)",
                "weights", "gradients", "optimizer_state", "activations")
        if not profile.optimizer.fused_backward:
            unscaled = in_bf16 if profile.precision.mixed_precision == "fp16" else ""
            add("fuse the optimizer step into the backward pass, so no full set of gradients exists "
                f"({unscaled}optimizer.fused_backward = true, with gradient_accumulation_steps = 1)", "gradients")
    if profile.training.train_text_encoder:
        add("stop training the text encoder (training.train_text_encoder = false)", *_ALL)
    if not profile.dataset.cache_latents:
        add("cache latents (dataset.cache_latents = true)", "weights", "activations")
    if profile.training.train_batch_size > 1:
        add(f"lower training.train_batch_size to {max(1, profile.training.train_batch_size // 2)} "
            "and raise gradient_accumulation_steps to match", "activations", "caches")
    if profile.training.method == "full":
        add("train a LoRA on a quantized base instead (training.method = \"lora\", model.quantize = \"nf4\")"
            if flux else "train a LoRA instead (training.method = \"lora\"), which needs far less", *_ALL)
    else:
        if not flux and not profile.model.quantize:
            add(quantize, "weights")
        if profile.training.lora is not None and profile.training.lora.rank > 8:
            add(f"lower the LoRA rank (training.lora.rank = {profile.training.lora.rank // 2})", "lora", "gradients", "optimizer_state")
    if profile.dataset.resolution > 512:
        add("lower dataset.resolution", "activations", "caches")
    return found
