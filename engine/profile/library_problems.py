"""Libraries a profile's settings need that this machine lacks (found, not imported: importing DeepSpeed takes
seconds, bitsandbytes one or two). What a machine lacks, not what the profile gets wrong: ``dbtui validate`` and a
run here refuse it (validate's ``--elsewhere`` warns instead), before a model loads."""

from __future__ import annotations

import importlib.util

from engine.profile.problems import Problem
from engine.profile.schema import Profile

DEEPSPEED_MISSING = ('"deepspeed" needs DeepSpeed, which is not installed here: pip install deepspeed, or set sharding = '
                     '"fsdp" (PyTorch\'s own) or "none"')
XFORMERS_MISSING = ('"xformers" needs the xformers package, which is not installed here: pip install xformers (a build '
                    'for this torch), or set attention = "sdpa" (as fast on torch 2)')
# fp8 stores its weights with torch alone (engine/models/fp8_linear.py): only NF4 and int8 are bitsandbytes'.
BITSANDBYTES_QUANTIZE = ("nf4", "int8")


def missing_library_problems(profile: Profile, resuming: bool = False) -> list[Problem]:
    """One problem per library the profile needs and this machine lacks. ``resuming``: the bitsandbytes settings are
    what the run's checkpoints were trained with, which a resume refuses changed: installing it is the way on."""
    problems = []
    if profile.launch.sharding == "deepspeed" and importlib.util.find_spec("deepspeed") is None:
        problems.append(Problem("launch.sharding", DEEPSPEED_MISSING))
    if profile.precision.attention == "xformers" and importlib.util.find_spec("xformers") is None:
        problems.append(Problem("precision.attention", XFORMERS_MISSING))
    if importlib.util.find_spec("bitsandbytes") is None:
        problems += _bitsandbytes_problems(profile, resuming)
    return problems


def _bitsandbytes_problems(profile: Profile, resuming: bool) -> list[Problem]:
    """The settings that need bitsandbytes; a quantized base only in a LoRA (a full fine-tune of one is refused)."""
    problems = []
    kept = " (the run's checkpoints were trained with it, so a resume keeps it)"
    quantize = profile.model.quantize
    if quantize in BITSANDBYTES_QUANTIZE and profile.training.method == "lora":
        problems.append(Problem("model.quantize", f'"{quantize}" needs bitsandbytes, which is not installed here: pip install '
                                                  'bitsandbytes' + (kept if resuming else
                                                                    ', or set quantize = "fp8" (no library needed) or remove it')))
    name = profile.optimizer.name
    if name.endswith("8bit"):
        problems.append(Problem("optimizer.name", f'"{name}" needs bitsandbytes, which is not installed here: pip install '
                                                  'bitsandbytes' + (kept if resuming else
                                                                    f', or set name = "{name.removesuffix("8bit")}"')))
    return problems
