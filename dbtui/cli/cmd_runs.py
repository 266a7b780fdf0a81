"""``dbtui runs | attach | stop | save | sample``: watch and control runs from any shell."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from dbtui.cli.common import ExamplesFormatter, header_progress, launch_waited, user_path
from dbtui.cli.runs_listing import list_runs_command, runs_elsewhere
from dbtui.format import resume_hint
from engine.errors import DbtuiError

if TYPE_CHECKING:
    from engine.events import Event
    from engine.runs.folder import RunFolder


# The best-step column's meaning, which README's "Evaluation" section gives in full (engine/evaluation/best.py).
BEST_STEP_HELP = ("best step: in a run scored with [evaluation] enabled = true, the step its scorer rates best so far: of "
                  "the steps scored after the base model whose prompt fidelity (CLIP-T) stayed within "
                  "evaluation.prompt_fidelity_tolerance of the base model's, the one with the highest subject "
                  "fidelity. '-' means none: the run is not scored, no step has been scored yet, every scored step "
                  "lost too much prompt fidelity, no evaluation prompt names a concept's identifier, or a resume "
                  "changed the [evaluation] settings and no step has been scored under them since. `dbtui attach RUN` "
                  "says which, or prints the command that exports the best step.")


def register(subparsers: argparse._SubParsersAction) -> None:
    runs = subparsers.add_parser("runs", help="list runs with status, step, last loss, best step and age",
                                 description="List the run folders under DIR (default: runs). When DIR holds none, "
                                 "the folders below this one that hold runs are named; a run folder given as DIR is "
                                 "listed alone.\n\n" + BEST_STEP_HELP,
                                 epilog="examples:\n  dbtui runs\n  dbtui runs dbtui-demo/runs\n"
                                 "  dbtui runs --json | jq -r '.[] | select(.status == \"running\") | .path'",
                                 formatter_class=ExamplesFormatter)
    runs.add_argument("folder", nargs="?", metavar="DIR", help="folder holding run folders (saving.output_dir)")
    runs.add_argument("--dir", help="the same as DIR (give one of them; default: runs)")
    runs.add_argument("--json", action="store_true",
                      help="one JSON list on stdout, a run an object: path, name, status, step, total_steps, "
                      "resumes_from, last_loss, best_step, updated (ISO 8601, UTC), age_seconds, starts_over "
                      "(null where the table shows '-'); notes go to stderr")
    runs.set_defaults(handler=list_runs_command)

    attach = subparsers.add_parser("attach", help="show a run's history, then follow it live",
                                   description="Replay a run's events from its events.jsonl, then follow it until it ends. "
                                   "Leaving (Ctrl-C) never stops the run.",
                                   epilog="examples:\n  dbtui attach                 # the newest run under runs/\n"
                                   "  dbtui attach runs/my-run\n  dbtui attach my-run --plain > my-run.log   # plain lines: "
                                   "a log", formatter_class=ExamplesFormatter)
    attach.add_argument("run", nargs="?", help="run folder or name under runs/ (default: the newest)")
    attach.add_argument("--dir", default="runs", help="where to look for run names (default: %(default)s)")
    attach.add_argument("--plain", action="store_true", help="plain lines instead of the live dashboard")
    attach.set_defaults(handler=_attach)

    resume = subparsers.add_parser(
        "resume", help="continue a stopped or crashed run from its latest checkpoint",
        description="Continue RUN exactly where its latest complete checkpoint left off, with the profile "
        "stored in RUN/profile.toml (so every --set it was started with still applies). A finished run "
        "is refused: its outputs are kept.",
        epilog="examples:\n  dbtui resume runs/my-run\n  dbtui resume my-run --detach\n"
        "  dbtui resume runs/my-run --from 800  # an earlier one: later ones set aside",
        formatter_class=ExamplesFormatter)
    resume.add_argument("run", help="run folder or name under runs/")
    resume.add_argument("--dir", default="runs", help="where to look for run names (default: %(default)s)")
    resume.add_argument("--from", dest="checkpoint", default="latest", type=user_path, metavar="CHECKPOINT",
                        help="a checkpoint of the run: its step (800), its folder's name in RUN/checkpoints "
                        "(step-00000800) or its path (default: the latest complete one)")
    resume.add_argument("--detach", action="store_true", help="continue in the background and return")
    resume.add_argument("--plain", action="store_true", help="plain log lines instead of the live dashboard")
    resume.set_defaults(handler=_resume)

    for name, text in (("stop", "save a checkpoint at the next step boundary, then stop"),
                       ("save", "save a checkpoint at the next step boundary and go on"),
                       ("sample", "make preview images at the next step boundary")):
        parser = subparsers.add_parser(name, help=f"ask a running trainer to {text}",
                                       description=f"Ask the trainer of RUN to {text}, through RUN/control/ "
                                       "(works from any shell, even after the terminal that started it is gone).",
                                       epilog=f"examples:\n  dbtui {name} runs/my-run\n  dbtui {name} my-run --dir "
                                       "dbtui-demo/runs   # under another output_dir",
                                       formatter_class=ExamplesFormatter)
        parser.add_argument("run", help="run folder or name under runs/")
        parser.add_argument("--dir", default="runs", help="where to look for run names (default: %(default)s)")
        parser.set_defaults(handler=_control, request=name)


def find_run(run: str | None, base: str):
    from dbtui.cli.not_a_run import inside_a_run, named_run_elsewhere, profile_given
    from engine.runs.folder import RunFolder, holds_a_run, list_runs, look_into
    from engine.support.plain_path import plain_path

    if run is None:
        runs = list_runs(Path(base))
        if not runs:
            raise DbtuiError(f"no runs in '{base}'" + runs_elsewhere(Path(base), option=True))
        return runs[0]
    # `--dir=~/runs` or a quoted '~/runs/x': a ~ the shell leaves alone, read as a profile's saving.output_dir reads it
    # (os.path's: '~old' of no such user stays as written, where pathlib's raises).
    candidates = (Path(os.path.expanduser(run)), Path(os.path.expanduser(base)) / run)
    for candidate in candidates:
        look_into(candidate)  # another user's run folder: said so, rather than "not a run folder"
        if holds_a_run(candidate):
            return RunFolder(plain_path(candidate))  # `runs/x/../x` named in commands said after as `runs/x`
        _refuse_another_machines_part(candidate)
    if not any(os.path.lexists(candidate) for candidate in candidates):  # a typo, not a folder that holds no run
        where = f"no folder '{run}' here or in '{base}'" if Path(run).name == run else f"'{run}' does not exist"
        raise DbtuiError(where + named_run_elsewhere(run, Path(base)))
    raise DbtuiError(profile_given(run) or inside_a_run(run, candidates) or f"'{run}' is not a run folder (no events.jsonl)"
                     + named_run_elsewhere(run, Path(base)))


def _refuse_another_machines_part(folder: Path) -> None:
    """A run folder on the disk of a machine other than 0, which holds no events: say where the run is controlled."""
    from engine.runs.meeting import machine_lock, machine_trainer, running_pid
    from engine.support.run_marks import MACHINE_PROFILE_GLOB, machine_log_name, profile_machine

    parts = sorted(folder.glob(MACHINE_PROFILE_GLOB))
    if not parts:
        return
    rank = profile_machine(parts[0].name)
    pid = running_pid(folder / "logs" / machine_log_name(rank))
    # A launcher killed hard leaves its trainers running (each in a session of its own): they hold the machine's lock.
    orphaned = None if pid else machine_trainer(machine_lock(folder / "logs", parts[0]))
    ends = "(once it trains with the run, the run then fails on every machine)"
    # Their lock may be held from another machine that started this part, where the folder is on a disk they share.
    where = (f"on this machine or, where this folder is on a disk that machines share, on another that started "
             f"machine {rank}")
    if pid:
        alive = (f"On this machine its trainer runs (pid {pid}): Ctrl-C in the terminal that started it ends it while "
                 f"it still waits for machine 0, and `kill {pid}` ends it at any time {ends}")
    elif orphaned:
        alive = (f"Trainers whose launcher has ended run it (the first: pid {orphaned}), {where}: `kill {orphaned}` and "
                 f"this run's other trainers there, as `ps -ef` lists them, end it {ends}")
    elif orphaned == 0:  # locked, its pid not yet written: `kill 0` would signal the user's own process group
        alive = (f"Trainers whose launcher has ended run it (the first has not written its pid yet), {where}; `ps -ef` "
                 "lists them there")
    else:
        # machine_trainer cannot tell a free lock from a disk without locks: say what was looked at, not more.
        # How this machine's part goes on: --resume only where a checkpoint is here (on a disk of its own, machine 0's
        # copied in), else its trainer finds none to resume from.
        from engine.runs.checkpoints import complete_checkpoints
        from engine.runs.file_errors import resume_machine_part
        from engine.runs.folder import RunFolder

        kept = bool(complete_checkpoints(RunFolder(folder)))
        alive = ("No trainer of it was found on this machine: its launcher's pid file names none alive, and none "
                 f"holds its lock. To go on with this machine's part: {resume_machine_part(folder, int(rank), kept)}")
    raise DbtuiError(f"{folder} holds machine {rank}'s part of a run of several machines, whose events, state and "
                     f"controls are machine 0's: watch and stop the run there (`dbtui stop` on machine 0 saves a "
                     f"checkpoint first). {alive}.")


def _attach(args: argparse.Namespace) -> int:
    from dbtui.cli.output_closed import run_goes_on_if_output_closed
    from dbtui.cli.watch import print_best, watch
    from dbtui.console import make_display
    from engine.runs.folder import CRASHED
    from engine.runs.follow import events_missing, no_event_read

    folder = find_run(args.run, args.dir)
    missing = None if folder.is_live() else events_missing(folder)  # a live one's trainer is yet to write them
    if missing and folder.status() != CRASHED:  # a crashed one is said as such below
        raise DbtuiError(f"{missing}; there is nothing to show")
    try:
        with run_goes_on_if_output_closed(folder):
            last = watch(folder, make_display(folder.path.name, plain=args.plain)).last
    except KeyboardInterrupt:
        print(f"\ndetached; the run goes on. `dbtui attach {shlex.quote(str(folder.path))}` to come back.")
        print_best(folder, ended=not folder.is_live())  # it may have ended meanwhile, or long before
        return 0
    status = folder.status()
    if last is None and status != CRASHED:  # a crashed one is said as such below
        raise DbtuiError(f"{no_event_read(folder)}; there is nothing to show")
    print_best(folder, ended=True)  # followed to its end
    said_its_end = _said_its_end(last, status, folder)
    if said_its_end and last is not None and last.kind == "run_finished" and last.status == "stopped":
        print(resume_hint(folder))  # as the foreground run says it; the display said the step
    if not said_its_end:
        # The events end without a last word: the trainer was killed (out of host memory, kill -9, a reboot).
        if status == CRASHED:
            print(f"the trainer is gone without a last word (crashed); see {folder.log}. {resume_hint(folder)}", file=sys.stderr)
            return 1
        if status == "unknown":  # no state file to tell a crash by
            print(f"the run's events end without a last word and its state.json is missing or damaged: its trainer was "
                  f"most likely killed (crashed); see {folder.log}. {resume_hint(folder)}", file=sys.stderr)
            return 1
    return 0 if last is None or last.kind != "run_failed" else 1


def _said_its_end(last: Event | None, status: str, folder: RunFolder) -> bool:
    """Whether the events end with the last word of the run's latest trainer. An end is an earlier one's where the run
    crashed since that trainer started: a stopped (or failed) run resumed and killed in its set-up, which writes no
    RunStarted before the models load."""
    from engine.runs.folder import CRASHED
    from engine.support.json_file import is_number

    if last is None or last.kind not in ("run_finished", "run_failed"):
        return False
    state = folder.read_state()
    return not (status == CRASHED and state is not None and is_number(last.time) and state.started > last.time)


def _makes_no_previews(folder) -> bool:
    from engine.profile import ProfileError
    from engine.runs.control import makes_previews
    from engine.runs.stored_profile import run_profile

    try:
        return not makes_previews(run_profile(folder).model_dump())
    except ProfileError:
        return False  # the trainer reads it its own way; the request is still worth making


def _resume(args: argparse.Namespace) -> int:
    from dbtui.cli.output_closed import say_before_start
    from dbtui.cli.watch import show_started_run
    from dbtui.format import profile_gone
    from engine.runs.inputs_check import RunInputsMissingError
    from engine.runs.launcher import start_run
    from engine.runs.stored_profile import run_profile

    folder = find_run(args.run, args.dir)
    if gone := profile_gone(folder):
        raise DbtuiError(f"{folder.profile} is {gone}, and resume trains the profile kept there; resume with the profile "
                         f"the run was started from instead: `dbtui run PROFILE --resume` (same name and output_dir)")
    profile = run_profile(folder)
    # A refusal's suggested command (a new run of a finished one) names the profile the run keeps.
    try:
        started = start_run(profile, detach=args.detach, resume=args.checkpoint, run_dir=folder.path,
                            given_as=shlex.quote(str(folder.profile)), progress=header_progress(),
                            decode_progress=header_progress(what="decoding images"),
                            decode_first=header_progress(what="decoding images") if args.detach else None,
                            # Said once it is sure to (a refusal says why alone), and before the trainer starts: a
                            # closed output then stops the command there, as `dbtui run`'s does.
                            before_start=lambda: say_before_start(f"resuming {folder.path} ({profile.name})"),
                            waiting=launch_waited)
    except RunInputsMissingError as error:
        # `resume` takes no --set: a moved model or image folder's new place goes in the profile it trains.
        error.advice = (f"where a file or folder it names was moved, write its new place in {folder.profile} (the "
                        f"profile `dbtui resume` trains), then `dbtui resume {shlex.quote(str(folder.path))}` again")
        raise
    return show_started_run(started, profile.name, plain=args.plain, every=profile.logging.every_n_steps,
                            detach=args.detach)


def _control(args: argparse.Namespace) -> int:
    from engine.runs.control import after_training_words, request, save_kept_words, trained_since
    from engine.runs.folder import RunFolder
    from engine.runs.launch_held import launch_under_way
    from engine.runs.paused import paused_trainer, paused_words

    candidates = (Path(os.path.expanduser(args.run)), Path(os.path.expanduser(args.dir)) / args.run)
    if launching := next((path for path in candidates if launch_under_way(path)), None):
        return _ask_while_launching(RunFolder(launching), args.request)
    try:
        folder = find_run(args.run, args.dir)
    except DbtuiError as error:
        if any(os.path.lexists(path) for path in candidates):
            raise
        raise DbtuiError(f"{error}. A run just started with `dbtui run --detach` makes its folder only once its profile "
                         f"is read (seconds): ask again once it prints \"trainer started\"") from None
    if not folder.is_live():
        status = folder.status()
        if status == "finished":
            hint = f"; it finished: its outputs are in {folder.outputs} and its previews in {folder.samples}"
        elif folder.profile.is_file():  # as resume will take it: its checkpoints gone or its profile.toml empty, refused
            hint = f". {resume_hint(folder)}"
        else:  # resume trains the profile kept there, and would be refused
            hint = f"; it has no {folder.profile.name} to resume it with"
        raise DbtuiError(f"no trainer is running in {folder.path} (status: {status}){hint}")
    if args.request == "sample" and _makes_no_previews(folder):
        raise DbtuiError(f"the run in {folder.path} makes no previews (sampling.num_images = 0 and [evaluation] "
                         "off in its profile), so there is nothing to sample")
    # Requests are read at step boundaries: one left now was never read, and the run ended as if not asked.
    if over := after_training_words(folder):
        if args.request != "stop":
            raise DbtuiError(f"{over}, so it takes no {args.request} request any more")
        print(f"{over}, so there is nothing left to stop: `dbtui attach {shlex.quote(str(folder.path))}` follows it")
        return 0
    request(folder, args.request)
    state = folder.read_state()
    # Set-up's stops end the run before its first step, with nothing to save (engine.runs.supervisor): so do those of a
    # trainer that reads "running" from its set-up's end until its first step (the base scoring round, say).
    if state is not None and args.request == "stop" and (state.status == "starting" or (
            state.status == "running" and not trained_since(folder.events, state.started))):
        print(f"asked the trainer in {folder.path} to stop; it is still setting up, so it stops before the first "
              "step, with nothing to save")
    else:
        kept = save_kept_words(folder) if args.request == "save" else ""
        print(f"asked the trainer in {folder.path} to {args.request}; it acts at the next step boundary"
              + (f". {kept}" if kept else ""))
    if (paused := paused_trainer(folder)) is not None:
        print(f"but {paused_words(paused, args.request)}")
    return 0


def _ask_while_launching(folder: RunFolder, what: str) -> int:
    """A request to a run whose launcher is still checking its inputs, before its trainer starts: a stop is left for
    the trainer, which then ends before its first step (the launcher keeps a request asked of it); a save or a
    sample has nothing to act on yet."""
    from engine.runs.control import request

    run = shlex.quote(str(folder.path))
    if what != "stop":
        raise DbtuiError(f"the run in {folder.path} is still starting (its launcher checks its inputs), so there is "
                         f"nothing to {what} yet: ask again once it has started (`dbtui attach {run}` shows it)")
    request(folder, "stop")
    print(f"asked the run in {folder.path} to stop; it is still starting (its launcher checks its inputs), so its "
          "trainer stops before the first step, with nothing to save")
    return 0
