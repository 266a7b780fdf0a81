"""What a run's events log says of its last start, step and finish, read from the end of the log.

A crashed run's log may be hundreds of MB: these readers look only at the lines holding the event's name, last first.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engine.events import RunFinished, StepEnded, event_from_dict, marked_lines_from_the_end


def finished_by_events(events_file: Path) -> int | None:
    """The last step of a run whose last end was a finish (its outputs/ hold that step); None otherwise."""
    finish = last_finish(events_file)
    return None if finish is None else finish.step


def last_step(events_file: Path) -> int | None:
    """The step of the last readable step_ended event; None where there is none."""
    event = last_step_ended(events_file)
    return None if event is None else event.step


def last_step_ended(events_file: Path) -> StepEnded | None:
    """The last readable step_ended event; None where there is none, or where the log cannot be read."""
    try:
        return next(_step_events(events_file), None)
    except OSError:
        return None


def loss_at(events_file: Path, step: int) -> float | None:
    """The loss the log's last readable step_ended of ``step`` holds (the latest attempt to train it); None where none
    is there (set aside with an earlier attempt's log, or never trained)."""
    try:
        return next((event.loss for event in _step_events(events_file) if event.step == step), None)
    except OSError:
        return None


def last_finish(events_file: Path) -> RunFinished | None:
    """The RunFinished of a run whose last start or end was a finish; None otherwise."""
    last = last_marked(events_file, (b'"run_finished"', b'"run_started"'))
    return last if isinstance(last, RunFinished) and last.status == "finished" else None


def last_marked(events_file: Path, marks: tuple[bytes, ...]) -> Any:
    """The last readable event of the lines holding one of ``marks``; None where there is none. Read from the end:
    `dbtui runs` asks it twice of a crashed run, whose log may be hundreds of MB."""
    try:
        for data in _marked_objects(events_file, marks):
            try:
                return event_from_dict(data)
            except (ValueError, TypeError):
                continue
    except OSError:
        return None
    return None


def run_starts(events_file: Path) -> Iterator[dict[str, Any]]:
    """The run_started events of a log as their JSON objects, last first; another event holding the words is skipped.
    Objects, not RunStarted: their readers take the fields they need (a profile, the hardware) as they are. Raises
    OSError."""
    for data in _marked_objects(events_file, (b'"run_started"',)):
        if isinstance(data, dict) and data.get("event") == "run_started":
            yield data


def _step_events(events_file: Path) -> Iterator[StepEnded]:
    """The log's readable step_ended events, last first. Raises OSError."""
    for data in _marked_objects(events_file, (b'"step_ended"',)):
        try:
            event = event_from_dict(data)
        except (ValueError, TypeError):
            continue
        if isinstance(event, StepEnded):
            yield event


def _marked_objects(events_file: Path, marks: tuple[bytes, ...]) -> Iterator[Any]:
    """The JSON values of the lines holding one of ``marks``, last first; a line that is not JSON (one being written,
    one cut off) skipped. Raises OSError."""
    for line in marked_lines_from_the_end(events_file, marks):
        try:
            yield json.loads(line)
        except ValueError:
            continue
