"""Watching a run: replay events.jsonl from the start, then follow it as it grows."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

from engine.events import Event, event_from_dict
from engine.runs.folder import RunFolder, pid_alive

END_KINDS = {"run_finished", "run_failed"}


def follow_events(
    folder: RunFolder, *, poll: float = 0.2, stop: Callable[[], bool] = lambda: False, follow: bool = True, start: int = 0
) -> Iterator[Event]:
    """Every event of the run from byte ``start``, then new ones as they come, until the run
    ends or ``stop()``. A resumed run appends to the same log, so an end event followed by a
    live trainer is history, not the end.

    Ends too when the trainer process is gone without a last event (killed), or, with
    ``follow=False``, at the end of what is written now.
    """
    position = start
    buffer = ""
    last_pass = False
    while True:
        try:
            with folder.events.open(encoding="utf-8") as file:
                file.seek(position)
                chunk = file.read()
                position = file.tell()
        except FileNotFoundError:
            chunk = ""
        buffer += chunk
        *lines, buffer = buffer.split("\n")
        for line in lines:
            if not line.strip():
                continue
            try:
                event = event_from_dict(json.loads(line))
            except (ValueError, TypeError):
                continue
            yield event
            if event.kind in END_KINDS and not (follow and folder.is_live()):
                return
        if last_pass or not follow:
            return
        if stop():
            last_pass = True  # read once more: the trainer may have written its last lines just now
            continue
        if not chunk:
            state = folder.read_state()
            if state and state.status in ("starting", "running") and not pid_alive(state.pid):
                last_pass = True
                continue
            time.sleep(poll)
