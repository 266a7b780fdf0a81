"""Which profile settings can change the meter's answer: the wizard re-estimates only when one of them does.

No torch here. Everything is kept but what is listed as unable to change a training step's GPU
memory, so a setting added later is re-estimated by default rather than missed.
"""

from __future__ import annotations

import json
from typing import Any

# Whole sections and single keys (dotted) the meter never reads: names, paths and prompts, the
# schedule, class images, logging, what is saved, and of previews and scoring everything but how many
# images a call generates, whether it guides, and whether they come between steps (the sampling pass).
NOT_MEMORY = frozenset({
    "name", "concepts", "logging",
    "sampling.prompts", "sampling.negative_prompt", "sampling.steps", "sampling.seed",
    "evaluation.prompts", "evaluation.seed", "evaluation.clip_model", "evaluation.dino_model", "evaluation.prompt_fidelity_tolerance",
    "saving.output_dir", "saving.keep_last_n", "saving.unet_half", "saving.export",
    # Class images decode one at a time (engine.training.sampling.decode_one_by_one), so their batch size does not
    # multiply the decode, the moment's largest part at 1024 px.
    "prior.sample_batch_size", "prior.steps", "prior.guidance_scale",
    "training.seed", "training.max_train_steps", "training.num_train_epochs", "training.text_encoder_stop_fraction",
    "optimizer.learning_rate", "optimizer.scale_lr", "optimizer.lr_scheduler", "optimizer.lr_warmup_steps",
    "optimizer.lr_cycles", "optimizer.lr_power",
})


# The one format every family writes and every training method may: the meter measures a profile as exporting only
# this, so that a format's own checks (lora_kohya's targets, Flux's refusal of single files) never decide its answer,
# as ``meter_key`` promises by leaving ``saving.export`` out. The run itself checks the real formats.
MEASURED_EXPORT = ("diffusers",)


def as_metered(profile: Any) -> Any:
    """``profile`` (a ``Profile``) as the meter measures it: exporting MEASURED_EXPORT only."""
    return profile.model_copy(update={"saving": profile.saving.model_copy(update={"export": list(MEASURED_EXPORT)})})


def _kept(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    kept = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if dotted in NOT_MEMORY:
            continue
        kept[key] = _kept(value, f"{dotted}.") if isinstance(value, dict) else value
    return kept


def meter_key(profile: Any) -> str:
    """The settings of a ``Profile`` that the meter may read, as text: two profiles with the same key get the same estimate.
    The pictures' sizes count too (the VAE's encode), through their folders and when they last changed."""
    from engine.memory.pictures import dataset_key

    return json.dumps({"settings": _kept(profile.model_dump(mode="json")), "pictures": dataset_key(profile)}, sort_keys=True)


def as_trained_in(profile: Any, precision: str) -> Any:
    """``profile`` as a machine that gives ``precision`` trains it (engine.training.precision.effective_precision): bf16
    weights only in bf16, and no fused step under fp16 (``bf16_weights_in_force``, ``fused_backward_in_force``)."""
    if precision == profile.precision.mixed_precision:
        return profile
    section = profile.precision.model_copy(update={"mixed_precision": precision,
                                                   "bf16_weights": profile.precision.bf16_weights and precision == "bf16"})
    optimizer = profile.optimizer.model_copy(update={"fused_backward": profile.optimizer.fused_backward and precision != "fp16"})
    return profile.model_copy(update={"precision": section, "optimizer": optimizer})
