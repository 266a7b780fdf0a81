"""Following a run folder's events in the terminal until the run ends."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from dbtui.cli.boundary import EXIT_INTERRUPTED
from dbtui.cli.output_closed import run_goes_on_if_output_closed
from dbtui.format import resume_hint
from engine.errors import DbtuiError
from engine.events import Event, last_lines
from engine.runs.control import request
from engine.runs.folder import ACTIVE, RunFolder
from engine.runs.follow import EventFollower
from engine.runs.meeting import MET
from engine.runs.paused import PauseNotice

TRAINER_SAYS = "dbtui trainer: "  # how the trainer's own lines in its log begin (engine/runs/worker.py)

# How long a trainer in a session of its own has to take a stop asked before its first step, from the run folder, before
# its processes are ended: one waiting for another machine (torch elastic's rendezvous, gloo's meeting) never reads it.
UNHEARD_STOP_S = 5.0


@dataclass
class Watched:
    """How following a run ended: its last event, and whether Ctrl-C (or SIGTERM) came on the way."""

    last: Event | None
    interrupted: bool = False


def watch(folder: RunFolder, display: Any, process: subprocess.Popen | None = None, start: int = 0,
          log_start: int = 0, own_session: bool = False) -> Watched:
    """Show the events from byte ``start`` (0: the whole history) until the run ends.

    Ctrl-C reaches the trainer too when it runs in this terminal's foreground, or it is asked to stop
    through the run folder where it runs in a session of its own (``own_session``: accelerate's
    launcher): it saves and stops, and we keep showing it do so. A second Ctrl-C stops both at once.
    ``log_start``: where this start's lines begin in the trainer log, shown when the trainer ends
    without a last event.
    """
    last: Event | None = None
    interrupted = False
    trained = False  # the training phase is over: what follows is the final samples and the outputs
    began = False  # this attempt set up (its run_started)
    stepped = False  # this attempt trained a step: a stop before, in the set-up or the base round, saves nothing
    follower = EventFollower(folder, start, lost_log_ends=process is None)  # attach's: a foreground run waits its trainer
    unheard_at: list[float] = []  # when a stop asked before the first step, still untaken, ends its processes
    pause_notice = PauseNotice(folder, display)  # a trainer stopped by a signal showed as running, its events still

    def stopped() -> bool:
        pause_notice()
        if process is None:
            return False
        if process.poll() is not None:
            return True
        if unheard_at and (stepped or not (folder.control / "stop").exists()):
            # Taken: this trainer reads its run folder and ends by itself; a later stop (`dbtui stop`, another
            # SIGTERM) is not this timer's, which would end it at once.
            unheard_at.clear()
        elif unheard_at and time.monotonic() >= unheard_at[0]:
            unheard_at.clear()  # once: what it could not end it said
            _end_unheard(process, folder)
        return process.poll() is not None

    with display, _signals_as_interrupts(process, folder, own_session):
        while True:
            try:
                # After a Ctrl-C this goes on from the last event shown, never replaying the log.
                for event in follower.events(stop=stopped):
                    # What the event says holds once it is written, even for a Ctrl-C while it is shown.
                    trained |= event.kind == "phase_finished" and getattr(event, "phase", "") == "training"
                    began |= event.kind == "run_started"
                    stepped |= event.kind == "step_ended"
                    display(event)
                    last = event
                break
            except KeyboardInterrupt:
                if process is None:
                    raise
                if interrupted:
                    print(f"\nquitting at once: the trainer is told to end without saving. {resume_hint(folder)}",
                          file=sys.stderr, flush=True)
                    if own_session and not stepped:
                        _end_unheard(process, folder)  # a launcher in its rendezvous hears no SIGINT
                    raise
                interrupted = True
                if own_session and not stepped:
                    unheard_at.append(time.monotonic() + UNHEARD_STOP_S)
                print("\nstopping: " + ("training is over; the final samples and outputs are being written (Ctrl-C "
                                        "again to quit at once, leaving them unfinished)" if trained else
                                        "saving a checkpoint at the next step boundary (Ctrl-C again to quit at once)"
                                        if stepped else "before the first step nothing needs saving; the run ends "
                                        + ("before it" if began else "as soon as its setup lets it")
                                        + " (Ctrl-C again to quit at once)"),
                      file=sys.stderr, flush=True)
    if process is not None:
        process.wait()
        if last is None or last.kind not in ("run_finished", "run_failed"):
            if interrupted:
                print(f"the trainer was stopped at once, without saving. {resume_hint(folder)}", file=sys.stderr)
            elif not folder.path.is_dir() or not folder.profile.is_file():
                # The launch wrote the profile before starting the trainer, which writes it again only as it begins
                # (in_process.train): a folder without it was moved or deleted, or made again in part by the dying
                # trainer. One deleted before the trainer began is made again whole, and reads as a trainer's end below.
                print(f"the run folder {folder.path} is gone: it was moved or deleted while the run trained", file=sys.stderr)
            else:
                # The trainer ended without a last event: show what it printed this time. Without an event of this
                # attempt (a resume's events.jsonl holds the earlier ones) it never began the run: accelerate launch
                # failed (a bad address, say), or the trainer could not start.
                tail = [line for line in _log_tail(folder, log_start) if line.strip()]
                said = tail[-1].removeprefix(TRAINER_SAYS) if tail and tail[-1].startswith(TRAINER_SAYS) else None
                if last is not None and said is not None and not tail[-1].startswith(MET):  # it ends with its count
                    # Its failure said in its log, not in the events: the disk that failed the run (full, read-only,
                    # failing) refused the events too. "Killed, or out of host memory?" sent the user the wrong way.
                    print(f"the trainer failed, and could not write that into the run folder: {said}\n"
                          f"{resume_hint(folder)}", file=sys.stderr)
                else:
                    print(("the trainer stopped unexpectedly, without a last word (killed, or out of host memory?)"
                           if last is not None else "the trainer ended before it began the run")
                          + ("; end of its log:\n  " + "\n  ".join(tail) if tail else "") + f"\n{resume_hint(folder)}",
                          file=sys.stderr)
    return Watched(last, interrupted)


@contextlib.contextmanager
def _signals_as_interrupts(process: subprocess.Popen | None, folder: RunFolder, own_session: bool) -> Iterator[None]:
    """While a trainer runs in the foreground: SIGINT is a KeyboardInterrupt here even where it was inherited
    as ignored (a shell's background job), since the trainer always answers it (and it is passed on, for a SIGINT
    that came to this process alone: the first as a stop request, the second as SIGINT), and SIGTERM (`kill`, a
    scheduler's stop) is passed to the trainer, which saves and stops, and shown as a first Ctrl-C, where by
    default it ended this process at once and said nothing. A trainer in its own session (``own_session``) is asked
    for that stop through the run folder: a SIGTERM would reach only accelerate's launcher, which kills the
    trainers 30 s after passing it on, whether their last checkpoint is written or not."""
    if process is None or threading.current_thread() is not threading.main_thread():
        yield
        return
    seen = []

    def on_terminate(signum: int, frame: Any) -> None:
        if not (own_session and _ask_to_stop(folder)):
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)  # a second one changes nothing for the trainer
        if not seen:
            seen.append(signum)
            raise KeyboardInterrupt

    def on_interrupt(signum: int, frame: Any) -> None:
        # A SIGINT sent to this process alone (`kill -INT`, `timeout -s INT`, a wrapper's stop) never reaches the
        # trainer as a terminal's Ctrl-C does. The first asks every process of the run to save and stop: through the run
        # folder in its own session (a signal would reach only accelerate's launcher), else as SIGTERM, which the lone
        # trainer hears after training too, where it reads no run folder: a second SIGINT, as a second Ctrl-C, then
        # ends it at once, as this says. After the terminal's own SIGINT either changes nothing.
        if not seen:
            seen.append(signum)
            if own_session:
                _ask_to_stop(folder)
            else:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
        else:
            with contextlib.suppress(ProcessLookupError):
                if own_session:
                    # Its whole group, as a terminal's Ctrl-C would: accelerate's single-process launcher passes on no
                    # SIGINT (it terminates, then kills, its trainer), its multi-process one passes it to each trainer.
                    os.killpg(process.pid, signal.SIGINT)
                else:
                    process.send_signal(signal.SIGINT)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_terminate), signal.signal(signal.SIGINT, on_interrupt)
    # Output to files (`dbtui run p.toml > run.log 2>&1 &`, then logging out): the hangup is the session's, not the
    # log's, and the trainer trains on through it; ended by it, this stopped the log mid-run without a word.
    hangup = signal.signal(signal.SIGHUP, signal.SIG_IGN) if _output_to_files() else None
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous[0])
        signal.signal(signal.SIGINT, previous[1])
        if hangup is not None:
            signal.signal(signal.SIGHUP, hangup)


def _output_to_files() -> bool:
    """Neither stdout nor stderr is a terminal, which a hangup would leave unwritable."""
    return not any(stream is not None and stream.isatty() for stream in (sys.stdout, sys.stderr))


def _end_unheard(process: subprocess.Popen, folder: RunFolder) -> None:
    """End the processes of a trainer stopped before its first step that did not take the stop (nothing to save): the
    run stays stopped, as one that took it, not crashed."""
    from dbtui.cli.other_machine import end_processes

    left = end_processes(process)
    if left:
        print(f"the trainer could not be ended: processes {', '.join(map(str, left))} still run; `kill -9` them",
              file=sys.stderr)
        return
    with contextlib.suppress(OSError):  # the stop request is asked of this trainer alone: the next one must not take it
        (folder.control / "stop").unlink(missing_ok=True)
    state = folder.read_state()
    if state is not None and state.status in ACTIVE:
        with contextlib.suppress(OSError):
            folder.write_state(dataclasses.replace(state, status="stopped"))


def _ask_to_stop(folder: RunFolder) -> bool:
    """Leave a stop request in the run folder, for every process of the run; False where it takes none (read-only)."""
    try:
        request(folder, "stop")
    except DbtuiError:
        return False
    return True


def _log_tail(folder: RunFolder, start: int, lines: int = 15) -> list[str]:
    """The last ``lines`` lines of this start of the trainer's log, read from its end: read whole from ``start``, a
    100 MB log took 310 MiB and 6 s as the trainer ended."""
    try:
        return last_lines(folder.log, lines, start)
    except OSError:
        return []


def print_best(folder: RunFolder, *, ended: bool) -> None:
    """The best step by [evaluation]'s scores and how to keep it, or why no step qualifies; nothing for an
    unscored run. ``ended``: no trainer runs it any more."""
    from engine.runs.score_words import best_of_run_said

    said = best_of_run_said(folder, ended=ended)
    if said:
        print(said)


def show_started_run(started: Any, title: str, *, plain: bool, every: int, detach: bool, said: str = "",
                     profile: str = "PROFILE") -> int:
    """What ``dbtui run`` and ``dbtui resume`` print once the trainer is started; the exit status. ``said``: a note of
    the command's own printed first (run's "this profile changes the run's settings"; each command's opening line is
    said before the start, dbtui.cli.output_closed.say_before_start). ``profile``: the profile file as the user named
    it, shell-quoted, which a machine other than 0 names in its resume command."""
    from dbtui.console import make_display

    folder = started.folder
    # From here the trainer runs: a reader gone at any line (`dbtui resume RUN | true`) leaves it training unwatched,
    # which ended 0 without a word where that line was a note of the command's, a branch's or the detached run's folder.
    with run_goes_on_if_output_closed(folder):
        if said:
            print(said, flush=True)
    if not started.main_machine:
        from dbtui.cli.other_machine import show_other_machine

        return show_other_machine(started, detach=detach, profile=profile)
    with run_goes_on_if_output_closed(folder):
        if started.from_start:
            # As its state said (a NaN loss fails a run, a kill -9 crashes it): "stopped" sent the user looking for a Ctrl-C.
            ended = started.ended_as if started.ended_as in ("failed", "stopped", "crashed") else "ended"
            print(f"{folder.path} {ended} before it saved a checkpoint: training it from the start", flush=True)
        if started.set_aside:
            # A resume from an earlier checkpoint leaves a branch: its checkpoints are kept, out of the way.
            print(f"resuming from an earlier checkpoint: the {len(started.set_aside)} later one(s) of the branch this leaves "
                  f"are kept in {started.set_aside[0].parent}/ ({', '.join(p.name for p in started.set_aside)}), "
                  "where no resume takes them and nothing deletes them", flush=True)
        if detach:
            print(f"trainer started in the background (pid {started.process.pid})\n"
                  f"  run folder: {folder.path}\n  watch it:   dbtui attach {shlex.quote(str(folder.path))}\n"
                  f"  stop it:    dbtui stop {shlex.quote(str(folder.path))}   (saves a checkpoint first)", flush=True)
            return 0
        from engine.runs.score_words import track_of_run

        # A resume shows its own events only; its rounds are said against those its earlier attempts scored.
        earlier = track_of_run(folder.events, started.events_offset)
        watched = watch(folder, make_display(title, plain=plain, every=every, scores=earlier), started.process,
                        started.events_offset, started.log_offset, started.own_session)
    last = watched.last
    if last is not None:  # the run ended; a failed one's scored checkpoints are worth keeping too
        print_best(folder, ended=True)
    if last is not None and last.kind == "run_finished":
        if last.status == "stopped":
            # The display said the step. From the run folder: its profile.toml holds every --set the run was started with.
            print(resume_hint(folder))
            return EXIT_INTERRUPTED if watched.interrupted else 0
        print(f"outputs are in {folder.outputs}")
        return 0
    return EXIT_INTERRUPTED if watched.interrupted else 1
