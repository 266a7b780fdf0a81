"""LoRA target names checked against the loaded models, so that a name matching no module is said with the
names there are, before class images and caching, instead of peft's error after them."""

from __future__ import annotations

from typing import Any

from engine.errors import DbtuiError
from engine.models.lora_layers import layer_names

SHOWN_NAMES = 16


class LoraTargetsError(DbtuiError):
    """A LoRA target the profile names matches no module of the model."""


def check_lora_targets(denoiser: Any, text_encoders: list[Any], lora: Any) -> None:
    """Raise LoraTargetsError for each of ``lora.unet_targets`` that matches no module of ``denoiser``, and each of
    ``lora.text_encoder_targets`` that matches none of ``text_encoders`` (the ones that train; none: unchecked)."""
    problems = []
    if lora.unet_targets:
        problems += _unmatched("training.lora.unet_targets", lora.unet_targets, [denoiser])
    if text_encoders:
        problems += _unmatched("training.lora.text_encoder_targets", lora.text_encoder_targets, text_encoders)
    if problems:
        raise LoraTargetsError("; ".join(problems))


def _unmatched(key: str, targets: list[str], models: list[Any]) -> list[str]:
    from peft import LoraConfig
    from peft.tuners.tuners_utils import check_target_module_exists

    names = layer_names(models)
    # peft's own matching (a whole name or a dotted suffix), one target at a time, over the layers it can wrap:
    # a target naming a container ("to_out" for the list holding to_out.0) is refused by peft as well.
    configs = {target: LoraConfig(target_modules=[target]) for target in targets}
    missing = [target for target, config in configs.items() if not any(check_target_module_exists(config, name) for name in names)]
    if not missing:
        return []
    return [f"{key}: {', '.join(repr(t) for t in missing)} {'matches' if len(missing) == 1 else 'match'} no module of the model; the layers LoRA can "
            f"train there end in {', '.join(_layer_suffixes(models))}"]


def _layer_suffixes(models: list[Any]) -> list[str]:
    """The layers' short names: "to_q", "to_out.0" (a bare index is no name, so the name before it is kept)."""
    suffixes: dict[str, None] = {}
    for name in layer_names(models):
        parts = name.split(".")
        suffixes[".".join(parts[-2:]) if parts[-1].isdigit() else parts[-1]] = None
    shown = list(suffixes)
    return shown[:SHOWN_NAMES] + ([f"… ({len(shown) - SHOWN_NAMES} more)"] if len(shown) > SHOWN_NAMES else [])
