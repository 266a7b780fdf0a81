"""Libraries a profile's settings need that this machine lacks (found, not imported: importing DeepSpeed takes
seconds). What a machine lacks, not what the profile gets wrong: ``dbtui validate`` warns, a run here refuses."""

from __future__ import annotations

import importlib.util

from engine.profile.problems import Problem
from engine.profile.schema import Profile

DEEPSPEED_MISSING = ('"deepspeed" needs DeepSpeed, which is not installed here: pip install deepspeed, or set sharding = '
                     '"fsdp" (PyTorch\'s own) or "none"')


def missing_library_problems(profile: Profile) -> list[Problem]:
    """One problem per library the profile needs and this machine lacks."""
    if profile.launch.sharding == "deepspeed" and importlib.util.find_spec("deepspeed") is None:
        return [Problem("launch.sharding", DEEPSPEED_MISSING)]
    return []
