"""Starting the trainer process for a profile: in the foreground or detached from the terminal.

With several machines every machine starts its own processes here, from the same profile with its
own ``launch.machine_rank``. Machine 0's main process writes what the run folder shares (events,
state, checkpoints, samples, outputs); each machine's first process writes that machine's cache
(RUN/cache). The run folder may be on a disk the machines share or on each machine's own disk:
machines other than 0 add only their own profile and log there (``profile-machine-N.toml``,
``logs/trainer-machine-N.log``).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from engine.runs.command import through_accelerate, worker_command
from engine.runs.control import drop_requests, requests_left
from engine.profile import Profile, ProfileError, dumps_profile
from engine.profile.changes import changed_settings, said_changes
from engine.runs.folder import run_dir_for
from engine.runs.checkpoints import NO_WHOLE_CHECKPOINT, CheckpointError, complete_checkpoints, damage_of, newest_whole
from engine.runs.resume_length import check_length, check_steps_left
from engine.runs.resume_point import (check_none_lost, check_same_model, checkpoint_named, chosen_step, put_back,
                                      set_aside_later)
from engine.runs.folder import (RunFolder, RunState, foreign_entries, holds_a_run, list_runs,
                                unusable_folder)
from engine.runs.earlier_attempt import put_attempt_back, set_aside_attempt
from engine.runs.last_events import loss_at
from engine.runs.launch_lock import launching
from engine.runs.meeting import machine_lock, machine_trainer, running_pid, write_pid
from engine.runs.profile_anchor import anchored_profile
from engine.runs.inputs_check import check_inputs
from engine.runs.start_refusals import (MachineLiveError, NoRunToResumeError, NotARunFolderError, RunExistsError,
                                      RunFinishedError, RunLiveError)
from engine.runs.stored_profile import run_profile
from engine.support.run_marks import machine_log_name, machine_profile_name


@dataclass
class StartedRun:
    folder: RunFolder
    process: subprocess.Popen
    command: list[str]
    events_offset: int  # where this run's events begin in events.jsonl (a resume appends)
    machine_rank: int = 0  # above 0: this machine only computes; machine 0 writes the events
    log: Path | None = None  # this machine's trainer log
    log_offset: int = 0  # where this start's lines begin in that log (a resume appends)
    from_start: bool = False  # asked to resume, but no checkpoint was saved yet: trains from step 0
    ended_as: str = ""  # a from_start resume's: how the run's last attempt ended ("failed", "stopped", "crashed"), read before it
    set_aside: tuple[Path, ...] = ()  # later checkpoints a resume from an earlier one moved aside (resume_point.py)
    own_session: bool = False  # no signal from this terminal reaches it: it is asked to stop through the run folder
    meets_at: str = ""  # with several machines: machine 0's address and port, where the machines meet
    changed: str = ""  # a resume's settings that differ from the run's stored profile: "key: before → now; …"

    @property
    def main_machine(self) -> bool:
        return self.machine_rank == 0


def machine_log(folder: RunFolder, machine_rank: int) -> Path:
    """The trainer log of one machine: machine 0 keeps the usual name, the others one each, so that
    on a disk the machines share no two write the same file."""
    return folder.log if machine_rank == 0 else folder.log.with_name(machine_log_name(machine_rank))


def machine_profile(folder: RunFolder, machine_rank: int) -> Path:
    """The profile one machine's trainer reads. RUN/profile.toml is machine 0's, the one
    ``dbtui resume`` and the outputs keep; another machine's (its own machine_rank) lies beside it."""
    return folder.profile if machine_rank == 0 else folder.path / machine_profile_name(machine_rank)


def start_run(profile: Profile, *, detach: bool = False, resume: str | None = None, run_dir: Path | None = None,
              given_as: str | None = None, given_keys: Collection[str] | None = None,
              progress: Callable[[int, int], None] | None = None,
              decode_progress: Callable[[int, int], None] | None = None,
              decode_first: Callable[[int, int], None] | None = None,
              before_start: Callable[[], None] | None = None,
              waiting: Callable[[Path], None] | None = None) -> StartedRun:
    """Write the run folder and start the trainer process.

    ``given_as``: the profile as the user named it (its path, and the command line's other ``--set``
    overrides), for the command a refusal suggests. ``given_keys``: the keys of those ``--set`` overrides; given, a
    resume whose profile file ends the run sooner than the run's stored profile is refused unless one of them says so.

    ``resume``: a checkpoint path or "latest" ("latest" of a run that saved none trains it from the
    start). Without it, a folder that already has checkpoints is refused (RunExistsError) instead of
    silently starting over. ``progress``, ``decode_progress``: told (done, total) as the images' headers are checked,
    and as the others are decoded where one could not be read (``check_inputs``).
    ``decode_first``: given, every training image is decoded before the trainer starts, and it is told (done, total).
    ``before_start``: called once every check has passed, just before the trainer starts; what it raises leaves the
    run as it was, no trainer started.
    ``waiting``: told the run folder once, where another launch into it is under way and this one waits for it.
    """
    folder = RunFolder(Path(run_dir or run_dir_for(profile)))
    # Locked from before the checks (seconds: the headers, the decode): a `dbtui stop` asked meanwhile finds the
    # launch under way (engine.runs.launch_held), and its request is kept, not dropped with older ones below.
    said = None if waiting is None else lambda: waiting(folder.path)
    with launching(folder, said):  # until this launch's trainer has written its state
        left = requests_left(folder)  # asked of a trainer that is gone: dropped below, unlike those asked of this launch
        # Stopped before its first checkpoint: nothing is lost by training from the start. With several
        # machines the worker's own check stays, since each machine must see the checkpoint.
        from_start = resume == "latest" and profile.launch.num_machines == 1 and not complete_checkpoints(folder)
        # A resume that trains from the start may change what no checkpoint was trained with: its advice says so.
        check_inputs(profile, run_dir, resuming=resume is not None and not from_start, progress=progress,
                     run_folder=folder.path, decode_progress=decode_progress)
        if resume and resume != "latest":
            resume = checkpoint_named(folder, resume)
        # Machine 0 writes the run's events and state; another machine's own disk holds none of them.
        if resume == "latest" and profile.launch.machine_rank == 0 and not folder.events.exists() and not folder.state_file.exists():
            raise NoRunToResumeError(f"there is no run to resume in {folder.path}: nothing was ever trained there"
                                     f"{_runs_near(folder.path)}. Check the profile's name and saving.output_dir (a relative "
                                     f"output_dir is read from the folder dbtui runs in, {Path.cwd()}), or start it without --resume.")
        rank = profile.launch.machine_rank
        asked = bool(resume)  # a resume, told as one (`dbtui resume` has no --set), even where it starts afresh
        if from_start:
            resume = None
        extra = ["--resume", resume] if resume else []
        if rank:
            extra += ["--profile", str(machine_profile(folder, rank))]
        # Absolute: its events and state name the run's files, read later from other folders (`dbtui attach`, the report).
        command = worker_command(profile, folder.path.absolute(), extra)
        log_path = machine_log(folder, rank)
        before = folder.read_state() if resume else None
        ended_as = folder.status() if from_start else ""  # before this launch's state file says "starting"
        held_a_run = holds_a_run(folder.path)
        try:
            prepared = _prepare(folder, profile, resume, given_as, given_keys, asked)
        except OSError as error:  # a read-only disk, a file where a folder should be, a full disk…
            raise unusable_folder(folder.path, error, resumed=asked, main_machine=rank == 0) from None
        # Its own session: no SIGHUP or Ctrl-C from this terminal. accelerate's launcher always needs one, even in the
        # foreground: it passes a SIGHUP, SIGINT or SIGTERM on to the trainers and kills them 30 s later, in the middle
        # of their last checkpoint or, for a closed SSH connection, of training. dbtui's watcher asks for the stop in the
        # run folder instead (dbtui/cli/watch.py).
        own_session = detach or through_accelerate(profile.launch)
        def undo() -> None:
            # No trainer started: the run stays as it was, and a folder that held none keeps no profile of this launch's,
            # which the next would take for the user's (foreign_entries).
            put_back(folder, prepared.set_aside)
            put_attempt_back(prepared.earlier)
            if not held_a_run:
                with contextlib.suppress(OSError):  # the error that called this is the one to say
                    machine_profile(folder, rank).unlink(missing_ok=True)

        if decode_first is not None:
            from engine.runs.decode_first import decode_before_start

            try:
                decode_before_start(profile, folder.path, decode_first)
            except BaseException:  # a damaged picture, or Ctrl-C in a long pass: the next try must find no profile here
                undo()
                raise
        if rank == 0:
            # Asked of a trainer killed before it could act; dropped here, not in the trainer once its imports are done,
            # which also dropped a stop asked the moment this returned (the wizard's s, pressed while starting). One
            # asked since the lock was taken was asked of this launch, and is kept.
            try:
                drop_requests(folder, left)
            except OSError as error:  # a control folder of another user's, a read-only disk
                undo()
                raise unusable_folder(folder.path, error, resumed=asked, main_machine=rank == 0) from None
        try:
            log = log_path.open("ab")
        except OSError as error:  # another user's log, say
            undo()
            raise unusable_folder(folder.path, error, resumed=asked, main_machine=rank == 0) from None
        process = None
        try:
            with log:
                if before_start is not None:
                    before_start()
                log_offset = log.tell()
                process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                           start_new_session=own_session, env=dict(os.environ, PYTHONUNBUFFERED="1"))
        except BaseException:
            if process is None:
                undo()
            raise
        if rank:
            write_pid(log_path, process.pid)  # for `dbtui stop` on this machine to say what ends it
        if rank == 0:
            # Until the trainer writes its own state, the folder names its process: one that dies before
            # that (a broken install, an import error) then reads as crashed instead of starting forever.
            # A resume shows the step of the checkpoint it continues, and the run's loss where it is that step's.
            step = before.step if before else 0
            if prepared.from_step is not None:  # the checkpoint's step, not the steps trained after it and lost
                step = prepared.from_step
            # The loss of a step after the checkpoint (a set-aside branch, or steps a kill lost) is not this step's:
            # the log's of the checkpoint's step is (an earlier resume killed setting up left its state none), which
            # `dbtui runs` shows where this trainer dies setting up too.
            loss = before.last_loss if before and before.step == step else None
            if loss is None and step:
                loss = loss_at(folder.events, step)
            folder.write_state(RunState(pid=process.pid, status="starting", step=step,
                                        total_steps=before.total_steps if before else 0, last_loss=loss,
                                        started=time.time(), heartbeat=time.time()))
    launch = profile.launch
    meets_at = f"{launch.main_process_ip}:{launch.main_process_port or 29500}" if launch.num_machines > 1 else ""
    return StartedRun(folder, process, command, prepared.events_offset, rank, log_path, log_offset, from_start, ended_as,
                      tuple(prepared.set_aside), own_session, meets_at, prepared.changed)


class Prepared(NamedTuple):
    """What _prepare found and did."""

    events_offset: int  # where this run's events will begin
    set_aside: list[Path]  # the later checkpoints a resume from an earlier one moved aside
    from_step: int | None  # the step of the checkpoint the resume continues, as its manifest says; None: no resume
    changed: str  # the settings that differ from the run's stored profile: "key: before → now; …"
    earlier: list[tuple[Path, Path]]  # an earlier attempt's log and pictures set aside: (where each was, where it went)


def _prepare(folder: RunFolder, profile: Profile, resume: str | None, given_as: str | None,
             given_keys: Collection[str] | None = None, asked: bool = False) -> Prepared:
    """Check and write the run folder. ``asked``: a resume was asked for (``resume`` None: it starts afresh)."""
    main_machine = profile.launch.machine_rank == 0
    # On a shared disk machine 0's trainer may be running here already: the others join it.
    if main_machine and folder.is_live():
        raise RunLiveError(folder.path)
    rank = profile.launch.machine_rank
    live = None if main_machine else running_pid(machine_log(folder, rank))
    if live is not None:
        raise MachineLiveError(folder.path, rank, live)
    orphaned = None if main_machine else machine_trainer(machine_lock(folder.log.parent, machine_profile(folder, rank)))
    if orphaned is not None:
        raise MachineLiveError(folder.path, rank, orphaned, launcher_ended=True)
    shown = given_as or "PROFILE"
    foreign = foreign_entries(folder)
    if foreign:
        raise NotARunFolderError(folder.path, foreign, shown)
    finished = folder.finished_step()
    if finished is not None:
        raise RunFinishedError(
            f"{folder.path} holds a finished run (step {finished}; outputs in {folder.outputs}), so there is "
            f"nothing to {'resume' if resume else 'start there'} and its outputs are kept. To train again, start a "
            f"new run: `dbtui run {shown} --set name=NEW_NAME`."
        )
    done = complete_checkpoints(folder)
    if done and not resume:
        raise RunExistsError(folder.path, done[-1][0])
    if asked and not resume:  # after the finished and live checks: a finished run's checkpoints are often deleted
        check_none_lost(folder)
    if resume and done:
        check_same_model(folder, profile)
    from_step = None
    if resume == "latest" and done:
        _check_latest(folder, done)
        from_step = done[-1][0]
    if resume and resume != "latest":
        from_step = chosen_step(folder, Path(resume))
    # Before the steps left: the run's own total is what a resume that ends before its checkpoint most likely lost.
    changed = _changes_from_stored(folder, profile, given_keys, from_step, shown) if resume else []
    if from_step is not None:
        check_steps_left(folder.path, profile, from_step, done[-1][1] if resume == "latest" else Path(resume))
    folder.create(resumed=bool(resume) or asked, main_machine=main_machine)
    # An earlier attempt that never checkpointed: keep its log, previews and scored rounds, start afresh.
    earlier = set_aside_attempt(folder) if main_machine and folder.events.exists() and not resume else []
    try:
        _write_profile(machine_profile(folder, rank), profile)
        # Last, when nothing else here can fail: a launch refused or failed leaves the run's checkpoints where they were.
        set_aside = set_aside_later(folder, from_step) if main_machine and from_step is not None else []
    except BaseException:
        put_attempt_back(earlier)
        raise
    return Prepared(folder.events.stat().st_size if folder.events.exists() else 0, set_aside, from_step,
                    said_changes(changed), earlier)


def _write_profile(target: Path, profile: Profile) -> None:
    """The profile the trainer reads, written whole."""
    written = target.with_name(f".{target.name}.{os.getpid()}.tmp")  # renamed whole: a trainer may be starting to read it
    try:
        written.write_text(dumps_profile(anchored_profile(profile)), encoding="utf-8")
        os.replace(written, target)
    finally:
        with contextlib.suppress(OSError):  # a read-only disk refuses this too: the write's error is the one to say
            written.unlink(missing_ok=True)  # what a full disk left of it


def _runs_near(path: Path) -> str:
    """Where runs are, below the folder that would have held this one, for a misspelt name."""
    near = [str(run.path) for run in list_runs(path.parent)[:5]]
    return f" (runs in {path.parent}: {', '.join(near)})" if near else ""


def _check_latest(folder: RunFolder, done: list[tuple[int, Path]]) -> None:
    """Refuse, in seconds, a latest checkpoint whose files are cut short or missing: found after the model load and
    the caching otherwise, and again at every retry."""
    step, latest = done[-1]
    damage = damage_of(latest)
    if damage:
        earlier = newest_whole(done[:-1])
        raise CheckpointError(f"the latest checkpoint {latest} is damaged: {damage}; "
                              + (f"resume from the newest whole one: `dbtui resume {shlex.quote(str(folder.path))} "
                                 f"--from {shlex.quote(str(earlier[1]))}`" if earlier else NO_WHOLE_CHECKPOINT))


def _changes_from_stored(folder: RunFolder, profile: Profile, given_keys: Collection[str] | None,
                         from_step: int | None, shown: str) -> list[tuple[str, Any, Any]]:
    """What a resume's profile changes of the one the run folder keeps (this machine's), to be said: `dbtui run P
    --resume` reads P and its overrides again, and the ``--set`` values the run was started with are not in P. One
    that may end the run sooner is refused unless ``given_keys`` (the command line's ``--set`` keys) say how long it
    trains (resume_length.check_length)."""
    rank = profile.launch.machine_rank
    stored_path = machine_profile(folder, rank)
    try:
        stored = run_profile(folder, stored_path)
    except ProfileError:  # none, or unreadable: nothing to compare with (the checkpoint's manifest was checked)
        return []
    # Both anchored: a run started before its model's folder was kept absolute keeps "models/mine", the same folder.
    changed = changed_settings(anchored_profile(stored), anchored_profile(profile))
    check_length(stored, stored_path, profile, changed, run=folder.path, machine_rank=rank, given_keys=given_keys,
                 from_step=from_step, shown=shown)
    return changed
