"""Following a run folder's events in the terminal until the run ends."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from engine.events import Event
from engine.runs.folder import RunFolder
from engine.runs.follow import EventFollower


def watch(folder: RunFolder, display: Any, process: subprocess.Popen | None = None, start: int = 0) -> Event | None:
    """Show the events from byte ``start`` (0: the whole history) until the run ends; returns the last event.

    Ctrl-C reaches the trainer too when it runs in this terminal's foreground: it saves and
    stops, and we keep showing it do so. A second Ctrl-C stops both at once.
    """
    last: Event | None = None
    interrupted = False
    follower = EventFollower(folder, start)
    stopped = lambda: process is not None and process.poll() is not None  # noqa: E731
    with display:
        while True:
            try:
                # After a Ctrl-C this goes on from the last event shown, never replaying the log.
                for event in follower.events(stop=stopped):
                    display(event)
                    last = event
                break
            except KeyboardInterrupt:
                if interrupted or process is None:
                    raise
                interrupted = True
                print("\nstopping: saving a checkpoint at the next step boundary (Ctrl-C again to quit at once)",
                      file=sys.stderr, flush=True)
    if process is not None:
        process.wait()
        if last is None or last.kind not in ("run_finished", "run_failed"):
            # The trainer ended without a last event: show the end of its log.
            tail = folder.log.read_text(errors="replace").splitlines()[-15:] if folder.log.exists() else []
            print("the trainer stopped unexpectedly; end of its log:\n  " + "\n  ".join(tail), file=sys.stderr)
    return last
