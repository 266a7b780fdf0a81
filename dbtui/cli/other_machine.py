"""``dbtui run`` on a machine other than 0: its trainer waits for machine 0, then computes; machine 0 shows the run."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
from typing import Any

from dbtui.cli.boundary import EXIT_INTERRUPTED
from engine.runs.meeting import MET, MeetingInLog

POLL_S = 0.5


def show_other_machine(started: Any, *, detach: bool) -> int:
    """Say that this machine waits for machine 0 until its trainer's log says they met; Ctrl-C before then ends it
    (nothing was trained), after it leaves it training with the run. The exit status."""
    rank, pid, run = started.machine_rank, started.process.pid, shlex.quote(str(started.folder.path))
    print(f"machine {rank} started (pid {pid}): it waits for machine 0 at {started.meets_at}, then trains with it; the "
          f"run's progress shows on machine 0\n  this machine's log: {started.log}", flush=True)
    if detach:
        print(f"  its log says when it has met machine 0. To stop the run (after a checkpoint): `dbtui stop {run}` on "
              f"machine 0; to end this machine's trainer alone: kill {pid}", flush=True)
        return 0
    meeting = MeetingInLog(started.log, started.log_offset)
    try:
        status = _wait(started.process, meeting, rank)
    except KeyboardInterrupt:
        if not meeting.check():
            # It never reached machine 0: nothing trained, nothing to save, and nothing else would ever end it.
            _end(started.process)
            print(f"\nmachine 0 was never reached at {started.meets_at}: this machine's trainer is ended (nothing was "
                  "trained). Check that machine 0 runs and that this machine reaches that address and port.",
                  file=sys.stderr)
            return EXIT_INTERRUPTED
        # Its own session heard nothing: it trains on with the others, which machine 0 alone can stop.
        print(f"\nthis machine's trainer goes on with the run (pid {pid}); to stop the run, run `dbtui stop {run}` on "
              f"machine 0 (it saves a checkpoint first). `kill {pid}` ends this machine's part alone: the run then "
              "fails on every machine, unsaved since its last checkpoint.", file=sys.stderr)
        return EXIT_INTERRUPTED
    if status == 0:
        print("this machine's trainer finished")
        return 0
    said = [line for line in _tail(started.log, started.log_offset) if line.startswith("dbtui trainer:")
            and not line.startswith(MET)]
    print(f"this machine's trainer stopped with exit status {status}" + (f": {said[-1]}" if said else "")
          + f"; see its log ({started.log}) and machine 0's", file=sys.stderr)
    return 1


def _wait(process: subprocess.Popen, meeting: MeetingInLog, rank: int) -> int:
    while True:
        with contextlib.suppress(subprocess.TimeoutExpired):
            return process.wait(timeout=POLL_S)
        if not meeting.met and meeting.check():
            print(f"machine {rank} met machine 0: it trains with the run", flush=True)


def _end(process: subprocess.Popen) -> None:
    """End the launcher's whole group (its own session): a SIGTERM, then a SIGKILL if it lingers."""
    for signum in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signum)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=30)
            return


def _tail(log: Any, start: int, lines: int = 40) -> list[str]:
    try:
        with log.open("rb") as file:
            file.seek(start)
            return file.read().decode(errors="replace").splitlines()[-lines:]
    except OSError:
        return []
