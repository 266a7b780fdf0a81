"""The memory meter in a process of its own, for callers that must stay free of torch (the wizard).

``python -m engine.memory PROFILE`` (engine/memory/__main__.py) prints the estimate, or why there is
none, as one JSON line; ``estimate_in_child`` starts it and reads the line back. A caller that no longer wants the
answer (newer settings came in) says so through ``stop``, and the child is ended at once rather
than left to spend the CPU for half a minute.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from engine.errors import DbtuiError
from engine.memory.estimate import MemoryEstimate
from engine.support.child_process import how_it_ended, tagged, wait_unless_stopped

RESULT_KEY = "memory_estimate"
ERROR_KEY = "memory_meter_error"  # the child's own word on why it has no estimate
COMMAND = (sys.executable, "-m", "engine.memory")  # the child, given the profile's path


class MeterProcessError(DbtuiError):
    """The meter's process failed; the message is its own word, or how it ended. ``recurs``: the child's own word
    (the settings cannot be estimated: the same settings fail again); else it was ended (the OOM killer) or
    crashed, which may pass next time."""

    def __init__(self, message: str, *, recurs: bool = False) -> None:
        super().__init__(message)
        self.recurs = recurs


def estimate_in_child(profile: Any, stop: Callable[[], bool] | None = None) -> MemoryEstimate | None:
    """``estimate_peak(profile)`` computed by a child process; None when ``stop()`` turned true first."""
    from engine.profile import save_profile

    with tempfile.TemporaryDirectory(prefix="dbtui-meter-") as tmp:
        folder = Path(tmp)
        path = save_profile(profile, folder / "profile.toml")
        # Files, not pipes: libraries write plenty to stderr, and an unread pipe would block the child.
        with (folder / "stdout.log").open("w+", encoding="utf-8") as out, (folder / "stderr.log").open("w+", encoding="utf-8") as errors:
            process = subprocess.Popen([*COMMAND, str(path)], stdout=out, stderr=errors, text=True)
            if not wait_unless_stopped(process, stop):
                return None
            out.seek(0)
            answer = _read(out)
            errors.seek(0)
            stderr = errors.read()
    if isinstance(answer, MemoryEstimate):
        return answer  # whole, even where a library's exit handler then failed the process
    if isinstance(answer, str):
        raise MeterProcessError(answer, recurs=True)
    raise MeterProcessError(how_it_ended("the memory meter", process.returncode, stderr))


def _read(lines: IO[str]) -> MemoryEstimate | str | None:
    """The child's estimate, or its own reason for having none."""
    for line in lines:
        data = tagged(line, (RESULT_KEY, ERROR_KEY))
        if data is None:
            continue
        if RESULT_KEY in data:
            return MemoryEstimate.from_dict(data[RESULT_KEY])
        return str(data[ERROR_KEY])
    return None
