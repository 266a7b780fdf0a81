"""The memory meter moves the way each setting must move it (a metamorphic sweep on the micro SD model).

From one micro-model LoRA (fp16, checkpointing, AdamW, cached latents and text), one setting changes at a time;
the estimate's part the setting acts on must rise or fall, and settings no step reads must leave it exactly alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.memory import estimate_peak
from engine.memory.estimate import MemoryEstimate
from tests.test_memory_meter import micro, micro_profile  # noqa: F401 (micro is a fixture)

LORA = {"training": {"method": "lora", "lora": {"rank": 4, "alpha": 4}}, "optimizer": {"name": "adamw"}}

# name: (settings over LORA, the part that must move, "up" or "down")
MOVES: dict[str, tuple[dict[str, Any], str, str]] = {
    "batch size 2": ({"training": {"train_batch_size": 2}}, "activations", "up"),
    "resolution 64": ({"dataset": {"resolution": 64}}, "activations", "up"),
    "no gradient checkpointing": ({"precision": {"gradient_checkpointing": False}}, "activations", "up"),
    "rank 32": ({"training": {"lora": {"rank": 32, "alpha": 32}}}, "optimizer_state", "up"),
    "adafactor": ({"optimizer": {"name": "adafactor"}}, "optimizer_state", "down"),
    "text encoder trained": ({"training": {"train_text_encoder": True}}, "optimizer_state", "up"),
    "latents not cached": ({"dataset": {"cache_latents": False}}, "weights", "up"),
}
# Learning rate, seed, length, sampling prompts and exports, all changed at once (one estimate: the meter is slow).
SAME = {"optimizer": {"learning_rate": 3e-6}, "training": {"seed": 123, "max_train_steps": 5000},
        "sampling": {"prompts": ["a zwx disc on the moon", "a red zwx disc"]}, "saving": {"export": ["lora_diffusers", "lora_kohya"]}}


def _merged(*parts: dict[str, Any]) -> dict[str, Any]:
    from tests.training_helpers import merge

    out: dict[str, Any] = {}
    for part in parts:
        out = merge(out, part)
    return out


@pytest.fixture(scope="module")
def base(micro: Path, tmp_path_factory: pytest.TempPathFactory) -> MemoryEstimate:  # noqa: F811
    return estimate_peak(micro_profile(micro, tmp_path_factory.mktemp("base"), **LORA))


@pytest.mark.parametrize("name", list(MOVES))
def test_a_setting_moves_its_part_of_the_estimate_its_way(name: str, micro: Path, base: MemoryEstimate,  # noqa: F811
                                                          tmp_path: Path) -> None:
    settings, part, way = MOVES[name]
    changed = estimate_peak(micro_profile(micro, tmp_path, **_merged(LORA, settings)))
    before, after = getattr(base, part), getattr(changed, part)
    assert (after > before if way == "up" else after < before), f"{name}: {part} {before} -> {after}"
    assert (changed.peak_allocated > base.peak_allocated if way == "up" else changed.peak_allocated < base.peak_allocated)


def test_settings_no_step_reads_leave_the_estimate_alone(micro: Path, base: MemoryEstimate, tmp_path: Path) -> None:  # noqa: F811
    changed = estimate_peak(micro_profile(micro, tmp_path, **_merged(LORA, SAME)))
    assert (changed.peak_allocated, changed.caching, changed.sampling) == (base.peak_allocated, base.caching, base.sampling)
