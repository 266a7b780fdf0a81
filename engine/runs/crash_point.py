"""Where a crashed run got to and where its resume goes on from, for `dbtui runs`: its state file is rewritten once a
second at most, so a trainer killed (kill -9, out of memory) leaves it steps behind the events log and the checkpoints."""

from __future__ import annotations

import json
from dataclasses import dataclass

from engine.events import StepEnded, event_from_dict, marked_lines_from_the_end
from engine.runs.folder import RunFolder, RunState


@dataclass(frozen=True)
class CrashPoint:
    reached: int  # the last step this attempt trained
    resumes_from: int  # the latest complete checkpoint's step, which `dbtui resume` loads; 0: from the start


def crashed_step(folder: RunFolder, state: RunState) -> str:
    """A crashed run's step figure: where it got to, and the step its resume goes on from."""
    point = crash_point(folder, state)
    return f"{point.reached}/{state.total_steps} · resumes from {point.resumes_from or 'the start'}"


def crash_point(folder: RunFolder, state: RunState) -> CrashPoint:
    """Read from the cheap sources: the log's last step_ended line (read from the end; one of this attempt's, not an
    earlier trainer's where this one was killed in its set-up) and the checkpoints' manifests."""
    from engine.runs.checkpoints import complete_checkpoints

    done = complete_checkpoints(folder)
    return CrashPoint(max(state.step, _last_step_since(folder, state.started)), done[-1][0] if done else 0)


def _last_step_since(folder: RunFolder, started: float) -> int:
    try:
        for line in marked_lines_from_the_end(folder.events, (b'"step_ended"',)):
            try:
                event = event_from_dict(json.loads(line))
            except (ValueError, TypeError):
                continue  # the line being written when the trainer was killed
            if isinstance(event, StepEnded):
                return event.step if event.time >= started else 0
    except OSError:
        return 0
    return 0
