"""The memory meter's estimates of the wizard's presets, stored: ``dbtui hardware`` states them at once.

The meter takes half a minute for an SD1.5-size model and a minute for SDXL, too long for a
command that answers in a second, so ``python bench/memory.py --presets`` measures every preset
once and writes preset_estimates.json beside this file. tests/test_meter_ui.py checks the file
against dbtui/presets.py (a preset changed or added without measuring it fails) and measures the
cpu-demo row and SD1.5's lora row again, every field. No torch here.
"""

from __future__ import annotations

import copy
import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.memory.estimate import MemoryEstimate
from engine.memory.inputs import NOT_MEMORY, as_trained_in

TABLE = Path(__file__).with_name("preset_estimates.json")
GENERATED_BY = "python bench/memory.py --presets"
BASE_RESOLUTION = 512  # SD presets keep the draft's resolution: they are measured at SD1.5's own
SD15 = "builtin:sd15-random"  # the SD presets' model in "presets": SD1.5's architecture, random weights
# The SD presets measured again on SD2.1-base, stored apart ("sd2" beside "presets"): SD2's OpenCLIP text encoder is
# three times SD1.5's, so full-text-encoder needs 20.7 GB on it where SD1.5 needs 17.4.
SD2_BASE = "stabilityai/stable-diffusion-2-1-base"
# And on SD2.1-v at its own 768 px, which the SD presets keep for a draft of it: 23.9 GB for full-text-encoder, which a
# 22 GB L4 was recommended by the 512 px figure.
SD2_V = "stabilityai/stable-diffusion-2-1"
SD2_V_RESOLUTION = 768


@dataclass(frozen=True)
class RowSet:
    """The SD presets measured on another model than SD1.5, or at another size: stored under ``key`` beside
    "presets", for drafts of advice family ``family`` trained at up to ``resolution`` px."""

    key: str
    family: str
    pretrained: str
    resolution: int


# By advice family (engine.hardware.machine.FAMILY_PRESETS): the rows its SD presets are judged by. The SD presets keep
# a draft's size, so each family is measured at the sizes drafts train at: an SD1.5 draft at 1024 px was picked
# full-8bit for a 12 GB card by its figure at 512 px.
ROW_SETS = {
    "sd-768": RowSet("sd_768", "sd", SD15, 768),
    "sd-1024": RowSet("sd_1024", "sd", SD15, 1024),
    "sd2": RowSet("sd2", "sd2", SD2_BASE, BASE_RESOLUTION),
    "sd2-768": RowSet("sd2_768", "sd2", SD2_V, SD2_V_RESOLUTION),
    "sd2-1024": RowSet("sd2_1024", "sd2", SD2_V, 1024),
}


def measured_sizes(family: str) -> dict[str, int]:
    """Advice family → the size its rows were measured at, for the SD presets of base family ``family`` ("sd", "sd2"),
    smallest first; empty for a family whose presets set their own size (SDXL, Flux)."""
    sizes = {key: rows.resolution for key, rows in ROW_SETS.items() if rows.family == family}
    if family == "sd":
        sizes["sd"] = BASE_RESOLUTION
    return dict(sorted(sizes.items(), key=lambda item: item[1]))


def measured_at(family: str) -> int | None:
    """The size advice family ``family``'s SD rows were measured at; None for SDXL's and Flux's, each its own."""
    if family in ROW_SETS:
        return ROW_SETS[family].resolution
    return BASE_RESOLUTION if family == "sd" else None


def size_step(resolution: int | None) -> int | None:
    """The smallest size any SD rows were measured at that holds ``resolution`` (None: unset, or above them all): the
    advice changes only where this does, not at each size typed."""
    sizes = {BASE_RESOLUTION, *(rows.resolution for rows in ROW_SETS.values())}
    return None if resolution is None else min((size for size in sizes if size >= resolution), default=None)


def base_family(family: str) -> str:
    """The advice family without the size its rows were measured at: "sd2-768" → "sd2"."""
    return ROW_SETS[family].family if family in ROW_SETS else family


@dataclass(frozen=True)
class PresetEstimate:
    """One preset measured on a model of its family, at batch 1, without and with prior preservation."""

    settings: dict[str, Any]  # the preset as it was measured (dbtui/presets.py)
    pretrained: str  # the model it was merged onto: builtin:sd15-random, builtin:sdxl-random, builtin:tiny-sd1
    no_prior: MemoryEstimate
    prior: MemoryEstimate  # prior preservation doubles the images of each step
    prior_fp16: MemoryEstimate | None = None  # a bf16 preset on a GPU without bf16, which trains in fp16 instead

    def need(self, bf16: bool = True, prior: bool = True) -> MemoryEstimate:
        """The estimate a card must hold, as this GPU trains it: with prior preservation (the larger) unless ``prior``
        is False. Without bf16 only the fp16 figure with prior preservation was measured: it stands for both."""
        if not bf16 and self.prior_fp16 is not None:
            return self.prior_fp16
        return self.prior if prior else self.no_prior

    def with_prior(self, bf16: bool = True, prior: bool = True) -> bool:
        """Whether ``need(bf16, prior)`` is a figure with prior preservation: without bf16, the fp16 one stands for both."""
        return prior or self.need(bf16, False) is self.need(bf16)

    def to_dict(self) -> dict[str, Any]:
        return {"settings": self.settings, "pretrained": self.pretrained, "no_prior": self.no_prior.to_dict(),
                "prior": self.prior.to_dict(), "prior_fp16": self.prior_fp16.to_dict() if self.prior_fp16 else None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PresetEstimate:
        fp16 = data.get("prior_fp16")
        return cls(data["settings"], data["pretrained"], MemoryEstimate.from_dict(data["no_prior"]),
                   MemoryEstimate.from_dict(data["prior"]), MemoryEstimate.from_dict(fp16) if fp16 else None)


def load_preset_estimates(path: Path = TABLE, *, family: str = "sd") -> dict[str, PresetEstimate]:
    """Every stored preset estimate by preset name; empty when the table has not been generated. ``family``: an advice
    family of ``ROW_SETS`` takes the SD presets' rows measured for it (SD2.1-base's, SD1.5's at 1024 px…; a set not
    stored would leave SD1.5's at 512 px: tests/test_sd_size_preset_pick.py checks each is)."""
    if not path.is_file():
        return {}
    return dict(_loaded(path, path.stat().st_mtime_ns, family))


@functools.lru_cache(maxsize=16)
def _loaded(path: Path, _mtime_ns: int, family: str) -> tuple[tuple[str, PresetEstimate], ...]:
    """The table read once while the file is unchanged: the wizard's Parameters step asks for the advice on each edit."""
    data = json.loads(path.read_text(encoding="utf-8"))
    own = data.get(ROW_SETS[family].key, {}) if family in ROW_SETS else {}
    return tuple((name, PresetEstimate.from_dict(row)) for name, row in {**data["presets"], **own}.items())


def profile_preset(profile: Any, rows: dict[str, PresetEstimate]) -> str | None:
    """The row of ``rows`` whose figures are ``profile``'s own: the profile holds its preset's settings that can change
    the memory (not its learning rate: engine.memory.inputs.NOT_MEMORY), at the size and the batch of 1 it was measured
    at; None where no row is. Prior preservation aside, which each row has both ways."""
    data = profile.model_dump(mode="json")
    for name, row in rows.items():
        if (_holds(data, row.settings) and profile.dataset.resolution == row.prior.width
                and profile.training.train_batch_size == 1):
            return name
    return None


def _holds(data: dict[str, Any], settings: dict[str, Any], prefix: str = "") -> bool:
    return all(_holds(data.get(key) or {}, value, f"{prefix}{key}.") if isinstance(value, dict)
               else f"{prefix}{key}" in NOT_MEMORY or data.get(key) == value for key, value in settings.items())


def save_preset_estimates(rows: dict[str, PresetEstimate], own_rows: dict[str, dict[str, PresetEstimate]],
                          path: Path = TABLE) -> Path:
    """``own_rows``: by advice family of ``ROW_SETS``, its SD presets' rows."""
    sets = {ROW_SETS[family].key: {name: row.to_dict() for name, row in family_rows.items()}
            for family, family_rows in own_rows.items()}
    text = json.dumps({"generated_by": GENERATED_BY, "presets": {name: row.to_dict() for name, row in rows.items()}, **sets},
                      indent=1, ensure_ascii=False)
    path.write_text(text + "\n", encoding="utf-8")
    return path


def _merge(into: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    for key, value in values.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = copy.deepcopy(value)
    return into


def uses_bf16(settings: dict[str, Any]) -> bool:
    return settings.get("precision", {}).get("mixed_precision") == "bf16"


def preset_profile(settings: dict[str, Any], pretrained: str, *, prior: bool, fp16: bool = False,
                   resolution: int = BASE_RESOLUTION) -> Any:
    """The profile a preset is measured as: a new profile of ``pretrained`` at ``resolution`` with the preset
    merged in (its own size, where it sets one); ``fp16``: as a GPU without bf16 trains a bf16 preset (no bf16
    weights, no fused step)."""
    from engine.profile import Profile

    data: dict[str, Any] = {
        "name": "preset", "model": {"pretrained": pretrained}, "dataset": {"resolution": resolution},
        "concepts": [{"instance_dir": "builtin:demo-instance", "instance_prompt": "photo of zwx dog",
                      "class_dir": "builtin:demo-class", "class_prompt": "photo of a dog"}],
    }
    _merge(data, settings)
    _merge(data, {"prior": {"enabled": prior}})
    profile = Profile.model_validate(data)
    return as_trained_in(profile, "fp16") if fp16 else profile
