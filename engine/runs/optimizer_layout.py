"""How a checkpoint holds its optimizer state, which a resume must find as this run makes it: one optimizer over
every weight, or one per weight (the fused step, with bf16 weights or without)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def optimizer_layout(trainer: Any) -> str:
    """How the trainer's optimizer state is saved (see ``layout_of``), by the memory cuts in force on this machine."""
    return layout_of(trainer.bf16_weights, trainer.fused_backward)


def layout_of(bf16_weights: bool, fused_backward: bool) -> str:
    """"whole" (one optimizer over every weight), "per_weight" (the fused step), "per_weight_bf16" (bf16 weights,
    with the stochastic rounding's generator)."""
    if bf16_weights:
        return "per_weight_bf16"
    return "per_weight" if fused_backward else "whole"


def layout_mismatch(path: Path, layout: str, trainer: Any, made_with: dict[str, Any] | None = None) -> str:
    """Why a checkpoint whose optimizer ``layout`` is not this run's cannot be resumed, and what to do: other
    settings, or (the profile's being the ones it was made with: ``made_with``, its manifest's) another machine,
    one with bf16 where the other had none or the other way round."""
    from engine.training.precision import maths_name

    said = f"checkpoint {path} saved its optimizer state as '{layout}', this run needs '{optimizer_layout(trainer)}'"
    profile = trainer.profile
    now = (profile.precision.bf16_weights, profile.optimizer.fused_backward)
    if made_with is not None:
        then = (made_with.get("precision", {}).get("bf16_weights", False), made_with.get("optimizer", {}).get("fused_backward", False))
        same = then == now
    else:  # a checkpoint from before manifests held the profile: what the layout says of the settings
        same = layout == layout_of(*now)
    if not same:
        return f"{said}: resume with the optimizer.fused_backward and precision.bf16_weights settings it was made with"
    if layout == "per_weight_bf16" or (layout == "per_weight" and trainer.precision != "bf16"):
        return (f"{said}: the profile is as it was, but this machine trains in {maths_name(trainer.precision)}, without "
                "bf16, so those settings cannot take effect here. Resume it on a machine with bf16, as it was made (a "
                "GPU of the RTX 30xx, A100 generation or newer)")
    return (f"{said}: the profile is as it was, but it was made on a machine without bf16, where those settings could "
            "not take effect, and this one has bf16. Resume it on a machine like the one it was made on")
