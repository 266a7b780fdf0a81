"""The memory meter in a process of its own, for callers that must stay free of torch (the wizard).

``python -m engine.memory PROFILE`` (engine/memory/__main__.py) prints the estimate as one JSON
line; ``estimate_in_child`` starts it and reads the line back. A caller that no longer wants the
answer (newer settings came in) says so through ``stop``, and the child is ended at once rather
than left to spend the CPU for half a minute.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from engine.child_process import wait_unless_stopped
from engine.errors import DbtuiError
from engine.memory.estimate import MemoryEstimate

RESULT_KEY = "memory_estimate"


class MeterProcessError(DbtuiError):
    """The meter's process failed; the message is its own last word."""


def estimate_in_child(profile: Any, stop: Callable[[], bool] | None = None) -> MemoryEstimate | None:
    """``estimate_peak(profile)`` computed by a child process; None when ``stop()`` turned true first."""
    from engine.profile import save_profile

    with tempfile.TemporaryDirectory(prefix="dbtui-meter-") as tmp:
        folder = Path(tmp)
        path = save_profile(profile, folder / "profile.toml")
        # Files, not pipes: libraries write plenty to stderr, and an unread pipe would block the child.
        with (folder / "stdout.log").open("w+", encoding="utf-8") as out, (folder / "stderr.log").open("w+", encoding="utf-8") as errors:
            process = subprocess.Popen([sys.executable, "-m", "engine.memory", str(path)], stdout=out, stderr=errors, text=True)
            if not wait_unless_stopped(process, stop):
                return None
            out.seek(0)
            estimate = _read(out)
            errors.seek(0)
            last_words = [line.strip() for line in errors if line.strip()]
    if process.returncode != 0 or estimate is None:
        raise MeterProcessError(last_words[-1] if last_words else f"the memory meter stopped with exit status {process.returncode}")
    return estimate


def _read(lines: IO[str]) -> MemoryEstimate | None:
    for line in lines:
        try:
            data = json.loads(line)
        except ValueError:
            continue  # a library's own print
        if isinstance(data, dict) and RESULT_KEY in data:
            return MemoryEstimate.from_dict(data[RESULT_KEY])
    return None
