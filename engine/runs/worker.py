"""``python -m engine.runs.worker RUN_DIR [--resume CHECKPOINT|latest] [--profile FILE]``: the trainer process.

Reads RUN_DIR/profile.toml (or FILE: another machine's of a multi-machine run) and reports only
through the run folder (events.jsonl, state.json), so whoever started it can go away. Exit status:
0 finished or stopped, 1 failed.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import DbtuiError
from engine.support.process_exit import exit_with

if TYPE_CHECKING:
    from engine.runs.folder import RunFolder
    from engine.runs.trainer_lock import TrainerLock


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.runs.worker", description="Train the profile in RUN_DIR/profile.toml.")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--resume", help="a checkpoint folder, or 'latest'")
    parser.add_argument("--profile", type=Path, help="the profile to train instead of RUN_DIR/profile.toml")
    args = parser.parse_args(argv)
    asked_to_stop: list[int] = []
    # The launcher names a profile only on a machine other than 0 (engine/runs/launcher.py): torch elastic's GROUP_RANK
    # is no machine number under a dynamic rendezvous (--rdzv_backend c10d numbers the machines as they arrive).
    keep_stops(asked_to_stop, waits_for_machine_0=args.profile is not None)

    from engine.runs.control import take_requests
    from engine.runs.folder import RunFolder
    from engine.runs.meeting import hold_machine_lock, machine_lock
    from engine.runs.trainer_lock import TrainerLock

    folder = RunFolder(args.run_dir)
    lock = TrainerLock(folder)
    try:
        folder.create(resumed=args.resume is not None, main_machine=args.profile is None)
        if args.profile is not None and os.environ.get("LOCAL_RANK", "0") == "0":
            # Held for this machine's part of the run: its launcher killed hard leaves this process running.
            hold_machine_lock(machine_lock(folder.log.parent, args.profile), resumed=args.resume is not None)
        # Taken before the seconds of imports and the processes' meeting: until then only the launcher's pid says the
        # run is alive, which means nothing from another PID namespace. The process of rank 0 takes it (accelerate and
        # torchrun set RANK; a lone trainer has none).
        if os.environ.get("RANK", "0") == "0":
            lock.acquire()
        return _train(args, folder, lock, asked_to_stop)
    except DbtuiError as error:
        # The advice too: machine N writes no events, and its `dbtui run` shows this line of its log.
        advice = getattr(error, "advice", "")
        print(f"dbtui trainer: {error}" + (f"; {advice}" if advice else ""), file=sys.stderr, flush=True)
        return 1
    finally:
        try:
            if lock.held:
                take_requests(folder)  # asked after the last step boundary: no later run of this folder acts on them
            lock.release()
        finally:  # however those end: a gloo group left up may abort the process at exit
            from engine.training.distributed import leave_gloo_group

            leave_gloo_group()


def keep_stops(asked_to_stop: list[int], *, waits_for_machine_0: bool) -> None:
    """Keep a Ctrl-C or SIGTERM that comes before the supervisor's handlers in ``asked_to_stop``, for it to act on
    (stopped in set-up), where it was a KeyboardInterrupt traceback that left the run "starting", then crashed.

    A machine other than 0 writes nothing of the run's until its processes have met machine 0's: while it
    ``waits_for_machine_0`` either signal ends it at once, even inside the meeting's C++ wait. Its `dbtui run` ends it
    so on a Ctrl-C, through torch elastic, which passes on a SIGTERM and waited 30 s more for a trainer that only took
    note of it."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL if waits_for_machine_0 else lambda signum, frame: asked_to_stop.append(signum))
    signal.signal(signal.SIGHUP, signal.SIG_IGN)


def _train(args: argparse.Namespace, folder: RunFolder, lock: TrainerLock, asked_to_stop: list[int]) -> int:
    from engine.runs.checkpoints import CheckpointError, epoch_leftovers, latest_checkpoint
    from engine.runs.in_process import train
    from engine.runs.report import write_report_at_end
    from engine.runs.resume_length import kept_total
    from engine.runs.stored_profile import run_profile
    from engine.runs.supervisor import Supervisor
    from engine.runs.meeting import say_met, say_ended
    from engine.training.distributed import process_state

    state = process_state()  # returns once every process of the run has met
    keep_stops(asked_to_stop, waits_for_machine_0=False)
    main_process = state.is_main_process
    if state.num_processes > 1 and state.is_local_main_process:
        say_met(state.num_processes)  # for `dbtui run` on a machine other than 0, which sees no events
    if main_process and not lock.held:
        lock.acquire()  # started by a launcher that sets no RANK
    elif lock.held and not main_process:
        lock.release()
    cancel = threading.Event()
    supervisor = Supervisor(folder, cancel=cancel, main_process=main_process)
    supervisor.install_signals()
    if asked_to_stop:
        supervisor.stop_requested = True
        cancel.set()
    try:
        if args.resume:
            resume = latest_checkpoint(folder) if args.resume == "latest" else Path(args.resume)
            if resume is None:
                raise CheckpointError(f"no complete checkpoint in {folder.checkpoints} to resume from (every machine of a "
                                      "run needs it there: a disk they share, or a copy of machine 0's)")
            supervisor.resume_from(resume)  # before the state is written: the run stands at its step from now on
        if main_process:
            supervisor.write_state("starting", *supervisor.position())
            supervisor.watch_setup_requests()
        profile = run_profile(folder, args.profile)
        result = train(profile, folder.path, cancel=cancel, step_hooks=[supervisor.on_step], trainer_hook=supervisor.attach,
                       epoch_leftovers=epoch_leftovers(supervisor.resume), start_step=supervisor.resume_step,
                       kept_total=kept_total(supervisor.resume, profile), save_last_step=supervisor.save_last_step)
        if main_process:
            # Stopped in set-up (its steps not yet counted), a resumed run stands where its checkpoint left it.
            step, total = (result.step, result.total_steps) if result.total_steps else supervisor.position()
            supervisor.write_state(result.status, step, total, supervisor.trainer.last_loss if supervisor.trainer else None)
            if result.status == "stopped":
                print(f"stopped at step {step}; resume with: dbtui resume {shlex.quote(str(folder.path))}", flush=True)
            write_report_at_end(folder.path)
        elif state.is_local_main_process and result.status != "finished":
            say_ended(result.status, result.step)  # for `dbtui run` on this machine, which said 'finished' of it
        return 0
    except BaseException:
        # Only the lock's holder speaks for the run.
        if main_process and lock.held:
            try:
                supervisor.write_failed()
            except OSError:
                pass  # the disk that failed the run refuses state.json too: the run's own error is the one to report
        raise


if __name__ == "__main__":
    exit_with(main)
