"""``dbtui run`` on a machine other than 0: its trainer waits for machine 0, then computes; machine 0 shows the run."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import time
from typing import Any

import psutil

from dbtui.cli.boundary import EXIT_INTERRUPTED, stops_as_interrupts
from dbtui.cli.watch import TRAINER_SAYS
from engine.events import LOG_BLOCK
from engine.runs.file_errors import resume_machine_part
from engine.runs.meeting import MET, MeetingInLog, forget_pid, ended_at

POLL_S = 0.5
END_GRACE_S = 10.0  # a trainer that met nobody ends at once on SIGTERM; the launcher then follows within seconds
END_POLL_S = 0.05
TRAINER = TRAINER_SAYS.rstrip().encode()


def show_other_machine(started: Any, *, detach: bool, profile: str = "PROFILE") -> int:
    """Say that this machine waits for machine 0 until its trainer's log says they met; Ctrl-C before then ends it
    (nothing was trained), after it leaves it training with the run. The exit status. ``profile``: the profile file as
    the user named it, shell-quoted, for the resume command said once the run stopped."""
    rank, pid, run = started.machine_rank, started.process.pid, shlex.quote(str(started.folder.path))
    print(f"machine {rank} started (pid {pid}): it waits for machine 0 at {started.meets_at}, then trains with it; the "
          f"run's progress shows on machine 0\n  this machine's log: {started.log}", flush=True)
    if detach:
        print(f"  its log says when it has met machine 0. To stop the run (after a checkpoint): `dbtui stop {run}` on "
              f"machine 0; to end this machine's trainer alone: kill {pid}", flush=True)
        return 0
    meeting = MeetingInLog(started.log, started.log_offset)
    # SIGTERM (`kill`, `timeout`, a scheduler's stop) as Ctrl-C, through its end too: by default it ended this process
    # alone, leaving the trainer, in a session of its own, waiting for machine 0 for good. Not SIGHUP: a closed
    # terminal leaves the trainer running.
    with stops_as_interrupts((signal.SIGTERM,)):
        try:
            status = _wait(started.process, meeting, rank)
        except KeyboardInterrupt:
            if not meeting.check():
                # Not known to have met machine 0: nothing would ever end it. Its log, read again once it has ended,
                # says whether its processes met machine 0's meanwhile (they print that line before anything else).
                left = end_processes(started.process)
                if started.process.poll() is not None:
                    forget_pid(started.log, pid)
                print(f"\n{_ended(left, meeting.check(), started.meets_at)}", file=sys.stderr)
                return EXIT_INTERRUPTED
            # Its own session heard nothing: it trains on with the others, which machine 0 alone can stop.
            print(f"\nthis machine's trainer goes on with the run (pid {pid}); to stop the run, run `dbtui stop {run}` "
                  f"on machine 0 (it saves a checkpoint first). `kill {pid}` ends this machine's part alone: the run "
                  "then fails on every machine, unsaved since its last checkpoint.", file=sys.stderr)
            return EXIT_INTERRUPTED
    forget_pid(started.log, pid)
    if status == 0:
        ended = ended_at(_trainer_lines(started.log, started.log_offset))
        if ended is None:
            print("this machine's trainer finished")
            return 0
        how, step = ended
        if how == "stopped" and not step:  # stopped before its first step: no checkpoint to resume from or copy
            print("this machine's trainer stopped with the run before its first step (stopped on machine 0, which saved "
                  f"no checkpoint). To go on: {resume_machine_part(started.folder.path, rank, kept=False, profile=profile)}")
            return 0
        said = ("stopped with the run at step {step} (stopped on machine 0, after its checkpoint). To go on" if how == "stopped"
                else "ended with the run: its final export failed on machine 0 after step {step} (machine 0 says why; the "
                     "weights trained are kept in the checkpoint of that step). Once that is fixed, to export them")
        print(f"this machine's trainer {said.format(step=step)}: {resume_machine_part(started.folder.path, rank, kept=True, profile=profile)}; "
              f"on a disk of its own, once machine 0's checkpoints/step-{step:08d} is copied into "
              f"{started.folder.checkpoints}/", file=sys.stdout if how == "stopped" else sys.stderr)
        return 0 if how == "stopped" else 1
    said = [line for line in _trainer_lines(started.log, started.log_offset) if not line.startswith(MET)]
    print(f"this machine's trainer stopped with exit status {status}" + (f": {said[-1]}" if said else "")
          + f"; see its log ({started.log}) and machine 0's", file=sys.stderr)
    return 1


def _wait(process: subprocess.Popen, meeting: MeetingInLog, rank: int) -> int:
    while True:
        with contextlib.suppress(subprocess.TimeoutExpired):
            return process.wait(timeout=POLL_S)
        if not meeting.met and meeting.check():
            print(f"machine {rank} met machine 0: it trains with the run", flush=True)


def end_processes(process: subprocess.Popen) -> list[int]:
    """End the launcher and every process below it: torch elastic starts each trainer in a session of its own, which a
    signal to the launcher's group misses, and the launcher killed first leaves them running. A SIGTERM (a trainer that
    has not met machine 0 ends at once, engine/runs/worker.py), then a SIGKILL for what is left after END_GRACE_S.
    The pids still alive then (none, unless the kernel holds one)."""
    # Reaped, its pid may be another process's by now, whose children are no trainers of this run.
    launcher = _as_psutil(process.pid) if process.poll() is None else None
    below = _below(launcher)
    for signum in (signal.SIGTERM, signal.SIGKILL):
        if process.poll() is None:  # reaped, its pid (and so its group's number) may be another process's by now
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signum)
        signalled: set[psutil.Process] = set()
        deadline = time.monotonic() + END_GRACE_S
        while True:
            for child in below - signalled:
                with contextlib.suppress(psutil.Error):
                    child.send_signal(signum)
            signalled |= below
            below = {child for child in below if _alive(child)}
            if process.poll() is not None and not below:
                return []
            if time.monotonic() >= deadline:
                break
            time.sleep(END_POLL_S)
            if process.poll() is None:
                below |= _below(launcher)  # one the launcher was starting as the signal came
    return sorted(child.pid for child in below) + ([process.pid] if process.poll() is None else [])


def _as_psutil(pid: int) -> psutil.Process | None:
    try:
        return psutil.Process(pid)
    except psutil.Error:
        return None


def _below(launcher: psutil.Process | None) -> set[psutil.Process]:
    try:
        return set(launcher.children(recursive=True)) if launcher else set()
    except psutil.Error:
        return set()


def _alive(child: psutil.Process) -> bool:
    """Running, and not ended (a zombie its dead launcher left for a parent that may never reap it)."""
    try:
        return child.is_running() and child.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _ended(left: list[int], met: bool, meets_at: str) -> str:
    """What ending this machine's trainer did, as far as it is known."""
    if left:
        return (f"this machine's trainer could not be ended: processes {', '.join(map(str, left))} still run; "
                f"`kill -9` them")
    if met:
        # It met machine 0 between the last look at its log and its end: the run had begun on every machine.
        return ("this machine's trainer is ended, just after it had met machine 0: the run fails on every machine "
                "(see machine 0)")
    # The meeting ends on each machine in turn: machine 0 may be through it while this one's SIGTERM came inside it.
    return (f"this machine's trainer is ended before its log said it met machine 0 at {meets_at}: this machine trained "
            "nothing, but if machine 0 was meeting it just then, machine 0's run fails too: check it there. If it "
            "waited long, check that machine 0 runs and that this machine reaches that address and port.")


def _trainer_lines(log: Any, start: int) -> list[str]:
    """The lines of this start of ``log`` that the trainer wrote itself (``dbtui trainer: …``): all of them, as its own
    line comes before torch elastic's report of the failed processes, which with two or more processes here is longer
    than the 40 last lines that were read. Read a piece at a time, and only a piece that holds one split into lines:
    read whole, a 100 MB log took 280 MiB and 3 s as the run ended."""
    lines: list[str] = []
    try:
        with log.open("rb") as file:
            file.seek(start)
            kept = b""  # a line cut at the piece's end, read on with the next
            while piece := file.read(LOG_BLOCK):
                read = kept + piece
                # At "\r" too: a progress bar redrawn for a whole run ends no line.
                cut = max(read.rfind(b"\n"), read.rfind(b"\r")) + 1
                lines += _said_by_trainer(read[:cut])
                kept = read[cut:]
    except OSError:
        return []
    return lines + _said_by_trainer(kept)


def _said_by_trainer(text: bytes) -> list[str]:
    if TRAINER not in text:
        return []
    # Parted as splitlines parts them: a progress bar's "\r" may run on into the trainer's line.
    return [line for line in text.decode(errors="replace").splitlines() if line.startswith(TRAINER.decode())]
