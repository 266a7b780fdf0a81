"""Starting the trainer process for a profile: in the foreground or detached from the terminal."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from engine.runs.command import worker_command
from engine.profile import Profile, dumps_profile
from engine.runs.folder import run_dir_for
from engine.runs.checkpoints import complete_checkpoints
from engine.runs.folder import RunFolder, RunFolderError, unusable_folder


class RunExistsError(RunFolderError):
    """The run folder already holds work; the user must say whether to resume or start anew."""


class RunFinishedError(RunFolderError):
    """The run folder holds a finished run: neither a resume nor a re-run may replace its outputs."""


@dataclass
class StartedRun:
    folder: RunFolder
    process: subprocess.Popen
    command: list[str]
    events_offset: int  # where this run's events begin in events.jsonl (a resume appends)


def start_run(profile: Profile, *, detach: bool = False, resume: str | None = None, run_dir: Path | None = None,
              profile_path: str | None = None) -> StartedRun:
    """Write the run folder and start the trainer process.

    ``resume``: a checkpoint path or "latest". Without it, a folder that already has
    checkpoints is refused (RunExistsError) instead of silently starting over.
    """
    folder = RunFolder(Path(run_dir or run_dir_for(profile)))
    extra = (["--resume", resume] if resume else []) + (["--detached"] if detach else [])
    command = worker_command(profile, folder.path, extra)
    try:
        offset = _prepare(folder, profile, resume, profile_path)
        log = folder.log.open("ab")
    except OSError as error:  # a read-only disk, a file where a folder should be, a full disk…
        raise unusable_folder(folder.path, error) from None
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=detach,  # its own session: no SIGHUP or Ctrl-C from this terminal
            env=env,
        )
    return StartedRun(folder, process, command, offset)


def _prepare(folder: RunFolder, profile: Profile, resume: str | None, profile_path: str | None) -> int:
    """Check and write the run folder; returns where this run's events will begin."""
    if folder.is_live():
        raise RunFolderError(f"a trainer is already running in {folder.path}; `dbtui attach {folder.path}` to watch it")
    state = folder.read_state()
    if state is not None and state.status == "finished":
        shown = profile_path or "PROFILE"
        raise RunFinishedError(
            f"{folder.path} holds a finished run (step {state.step}; outputs in {folder.outputs}), so there is "
            f"nothing to {'resume' if resume else 'start there'} and its outputs are kept. To train again, start a "
            f"new run: `dbtui run {shown} --set name=NEW_NAME`."
        )
    done = complete_checkpoints(folder)
    if done and not resume:
        raise RunExistsError(
            f"{folder.path} already has checkpoints (up to step {done[-1][0]}). Resume it with "
            f"`dbtui resume {folder.path}` (its own profile and overrides), or start a new run with "
            f"`--set name=NEW_NAME`."
        )
    folder.create()
    if folder.events.exists() and not resume:
        # An earlier attempt that never checkpointed: keep its log, start a fresh one.
        folder.events.rename(folder.events.with_name(f"events.{int(folder.events.stat().st_mtime)}.jsonl"))
    folder.profile.write_text(dumps_profile(profile), encoding="utf-8")
    return folder.events.stat().st_size if folder.events.exists() else 0
