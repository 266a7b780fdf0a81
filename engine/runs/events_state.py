"""A run's state as its events log tells it, for a run folder whose state.json is missing or damaged (deleted by hand,
left out of a copy): its last attempt's step, length, last loss and how it ended, so that `dbtui runs` and the wizard's
run list say more than "unknown"."""

from __future__ import annotations

import json

from engine.events import Event, RunFailed, RunFinished, RunStarted, StepEnded, event_from_dict, marked_lines_from_the_end
from engine.runs.folder import RunFolder, RunState

_MARKERS = (b'"run_started"', b'"step_ended"', b'"run_finished"', b'"run_failed"')


def state_from_events(folder: RunFolder) -> RunState | None:
    """The state the trainer would have written, read from the end of the log back to its last step or start (a long
    run's log is hundreds of MB): "running" where no end follows them (``run_status`` then tells a live trainer by its
    lock from a killed one), with no pid; ``started`` is the last start's time where it is read, for the crash point.
    None where the log tells nothing (missing, unreadable, no such line)."""
    end: RunFinished | RunFailed | None = None
    try:
        for line in marked_lines_from_the_end(folder.events, _MARKERS):
            event = _event(line)
            if isinstance(event, (RunFinished, RunFailed)):
                end = end or event  # the last end; an earlier one is an attempt resumed since
            elif isinstance(event, StepEnded):
                return _state(end, event.step, event.total_steps, event.loss, started=0.0)
            elif isinstance(event, RunStarted):
                return _state(end, event.resumed_from_step, event.total_steps, None, started=event.time)
    except OSError:
        return None
    return None if end is None else _state(end, end.step or 0, 0, None, started=0.0)


def _event(line: bytes) -> Event | None:
    try:
        return event_from_dict(json.loads(line))
    except (ValueError, TypeError):
        return None  # the line being written when the trainer was killed


def _state(end: RunFinished | RunFailed | None, step: int, total: int, loss: float | None, started: float) -> RunState:
    if isinstance(end, RunFinished):
        status, step = end.status, end.step
    elif isinstance(end, RunFailed):
        status, step = "failed", step if end.step is None else end.step
    else:
        status = "running"
    return RunState(pid=0, status=status, step=step, total_steps=total, last_loss=loss, started=started)
