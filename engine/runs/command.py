"""The trainer process: how it is started, alone or through ``accelerate launch``."""

from __future__ import annotations

import sys
from pathlib import Path

from engine.profile import Profile


def worker_command(profile: Profile, run_dir: Path, extra: list[str] = ()) -> list[str]:
    """The command that trains ``run_dir/profile.toml``; several processes go through accelerate."""
    worker = ["-m", "engine.runs.worker", str(run_dir), *extra]
    n = profile.launch.num_processes
    if n <= 1:
        return [sys.executable, *worker]
    return [
        sys.executable, "-m", "accelerate.commands.launch",
        "--multi_gpu", "--num_processes", str(n), "--num_machines", "1", "--dynamo_backend", "no",
        *profile.launch.extra_args, *worker,
    ]
