"""A bitsandbytes that is installed but cannot load (its CUDA setup failing), said before the model loads.

Its import is deferred (engine/support/deferred_import.py), so a broken install fails at its first use, deep in a library:
peft asks it of every LoRA layer it adds, wherever it is installed, so a LoRA run fails there even with no 8-bit
optimizer and no quantized base; an 8-bit optimizer or an NF4 or int8 base use it too. Only such runs load it here:
one that never uses it keeps its start lean.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from engine.errors import DbtuiError
from engine.profile.library_problems import BITSANDBYTES_QUANTIZE


class BitsandbytesBrokenError(DbtuiError):
    """bitsandbytes is installed here, and a run needs it, but it cannot be loaded."""


def _settings(profile: Any) -> dict[str, str]:
    """The profile's settings that use bitsandbytes, by key."""
    settings = {}
    if profile.training.method == "lora" and profile.model.quantize in BITSANDBYTES_QUANTIZE:
        settings["model.quantize"] = profile.model.quantize
    if profile.optimizer.name.endswith("8bit"):
        settings["optimizer.name"] = profile.optimizer.name
    return settings


def check_bitsandbytes_loads(profile: Any) -> None:
    """Load bitsandbytes now where the run will and it is installed; refuse the run where it cannot be loaded."""
    settings, lora = _settings(profile), profile.training.method == "lora"
    if not (settings or lora) or importlib.util.find_spec("bitsandbytes") is None:
        return  # not installed: the checks before the run said what needs it (engine/profile/library_problems.py)
    from engine.support.deferred_import import load

    try:
        import bitsandbytes

        load(bitsandbytes)
    except Exception as error:  # noqa: BLE001 - whatever its import raises, the install is what to fix
        uses = (["peft loads it for every LoRA where it is installed"] if lora else []) + [
            f'{key} = "{value}"' for key, value in settings.items()]
        change = " and ".join(settings)
        if lora:  # peft loads it whatever the settings; uninstalled, it is left alone
            instead = "or uninstall it (pip uninstall bitsandbytes)" + (f" and change {change}" if change else "")
        else:
            instead = f"or change {change}"
        raise BitsandbytesBrokenError(
            f"bitsandbytes is installed here but cannot be loaded ({error}), and this run needs it ({'; '.join(uses)}): "
            f"reinstall it for this machine's CUDA (pip install --force-reinstall bitsandbytes), {instead}"
        ) from None
