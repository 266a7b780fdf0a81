"""LoRA settings a profile sets that its run never reads: ``dbtui validate`` and the wizard's review warn of them.

A warning rather than an error: a run made while they were set must still resume from its own profile."""

from __future__ import annotations

from typing import Any

from engine.profile.problems import Problem
from engine.profile.training_sections import LoraSection

_DEFAULT_TEXT_TARGETS = LoraSection.model_fields["text_encoder_targets"].default


def unused_lora_problems(profile: Any) -> list[Problem]:
    """Text-encoder targets of their own while the text encoder stays frozen: the run trains a LoRA on the
    denoiser alone, and the targets suggest otherwise."""
    training = profile.training
    lora = training.lora
    if training.method != "lora" or lora is None or training.train_text_encoder:
        return []
    if list(lora.text_encoder_targets) == list(_DEFAULT_TEXT_TARGETS):
        return []
    return [Problem("training.lora.text_encoder_targets",
                    "only applies when training.train_text_encoder = true: as set, the text encoders get no LoRA and the run "
                    "trains the denoiser's alone; set train_text_encoder = true to train them too, or remove text_encoder_targets")]
