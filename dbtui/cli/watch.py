"""Following a run folder's events in the terminal until the run ends."""

from __future__ import annotations

import shlex
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


def show_started_run(started: Any, title: str, *, plain: bool, every: int, detach: bool) -> int:
    """What ``dbtui run`` and ``dbtui resume`` print once the trainer is started; the exit status."""
    from dbtui.console import make_display

    folder = started.folder
    if not started.main_machine:
        # Machine 0 writes the events; this machine's trainer only computes (and logs).
        print(f"machine {started.machine_rank} joined the run (pid {started.process.pid}); its progress shows on machine 0\n"
              f"  this machine's log: {started.log}")
        if detach:
            return 0
        status = started.process.wait()
        print(f"this machine's trainer {'finished' if status == 0 else f'stopped with exit status {status}; see its log'}")
        return 0 if status == 0 else 1
    if detach:
        print(f"trainer started in the background (pid {started.process.pid})\n"
              f"  run folder: {folder.path}\n  watch it:   dbtui attach {folder.path}\n"
              f"  stop it:    dbtui stop {folder.path}   (saves a checkpoint first)")
        return 0
    last = watch(folder, make_display(title, plain=plain, every=every), started.process, started.events_offset)
    if last is not None and last.kind == "run_finished":
        if last.status == "stopped":
            # From the run folder: its profile.toml holds every --set the run was started with.
            print(f"stopped at step {last.step}; resume with: dbtui resume {shlex.quote(str(folder.path))}")
        else:
            print(f"outputs are in {folder.outputs}")
        return 0
    return 1
