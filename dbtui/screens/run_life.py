"""The dashboard's run seen from the wizard: the launcher's answer to a start as the message the screen acts on,
and what the wizard says of the run when the user leaves it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.message import Message

from dbtui.format import goes_on, resume_hint
from dbtui.messages import ResumeOffered, RunAttached
from engine.profile import ProfileError
from engine.runs.folder import ACTIVE, CRASHED, RunFolder, run_dir_for


@dataclass
class NotStarted(Message):
    """Starting the run failed, or the user declined to resume: ``reason``, and what to do in the wizard."""

    reason: str
    advice: str


@dataclass
class TrainerGone(Message):
    """The run's events ended without a last word, and its status says why (e.g. "crashed")."""

    status: str


NO_PREVIEWS = ("This run makes no previews: its sampling.num_images is 0 and [evaluation] is off. Set "
               "sampling.num_images in Parameters for the next run.")


@dataclass
class AlreadyRunning(Message):
    """The profile's run is live: a trainer started before is at work in ``folder``."""

    folder: Path


@dataclass
class LaunchWaiting(Message):
    """Another launch into ``folder`` holds it (its images checked, its trainer starting): this start waits for it."""

    folder: Path


def start_outcome(engine: Any, profile: Any, resume: str | None,
                  waiting: Callable[[Path], None] | None = None) -> tuple[Message, Path | None]:
    """Start the profile's run (in a worker: it takes seconds); what the dashboard is told, and the folder of the run
    now training (None: none is). ``waiting``: told the folder once, where another launch into it makes this one wait."""
    from engine.runs.start_refusals import NotARunFolderError, RunExistsError, RunFinishedError, RunLiveError

    since = time.time()  # what the trainer writes from now on is news; a stop just before a resume is not
    try:
        folder = engine.start_run(profile, resume=resume, waiting=waiting)
        return RunAttached(folder, since), folder
    except RunLiveError as error:  # started before (the wizard left, or another terminal): watch it
        return AlreadyRunning(error.folder), error.folder
    except RunExistsError as error:  # the dialog's own keys resume or go back: not the CLI's commands
        return ResumeOffered(profile, f"{error.folder} already has checkpoints (up to step {error.step})."), None
    except RunFinishedError:
        folder = run_dir_for(profile)  # as the launch names it: without the output folder's detours
        return NotStarted(f"{folder} holds a finished run, whose outputs are kept",
                          "Go back (Esc) to Parameters and give the run a new name."), None
    except NotARunFolderError as error:  # the user's own files: the wizard's way to another folder, not the CLI's
        return NotStarted(f"{error.folder} is not a run folder: it holds {error.said}, which the run would write over "
                          "or mix with its own files",
                          "Go back (Esc) to Parameters and give the run a name of its own (or another output "
                          "folder): the run's folder is the output folder / the run name."), None
    except Exception as error:  # noqa: BLE001 - shown to the user
        return NotStarted(str(error), "Go back (Esc), change what it names, and come back."), None


def resumes_here(session: Any, folder: Path) -> bool:
    """Whether Train of the session's draft (after Esc) would ask to resume the run in ``folder``: not when the draft
    names another run (attached to a folder whose name is no valid run name) or does not validate."""
    try:
        return run_dir_for(session.profile()).absolute() == folder.absolute()
    except ProfileError:
        return False


def how_to_resume(session: Any, folder: Path) -> str:
    """A stopped run goes on from the shell, or from the wizard when Train of the draft (after Esc) would resume it."""
    here = "Esc then Ctrl+N resumes it in the wizard. " if resumes_here(session, folder) else ""
    return here + resume_hint(RunFolder(folder.absolute()))  # no stop after a command


def draft_elsewhere(session: Any, folder: Path) -> Path | None:
    """The folder Train of the session's draft would start its run in, when that is not ``folder`` (None: it is, or
    the draft does not validate, and Train follows the run in ``folder``)."""
    try:
        other = run_dir_for(session.profile()).absolute()
    except ProfileError:
        return None
    return None if other == folder.absolute() else other


def trains(engine: Any, folder: Path) -> bool:
    """Whether a trainer still works in ``folder``, as the runs list says (a folder gone or unreadable: no)."""
    return engine.run_status(folder) in ACTIVE


def draft_differs(session: Any, folder: Path) -> bool:
    """Whether the session's draft asks for something else than the profile the run in ``folder`` trains with (its
    folders compared as absolute paths, as the run keeps them); False when either cannot be read."""
    from engine.runs.folder import RunFolder
    from engine.runs.launcher import anchored_profile
    from engine.runs.stored_profile import run_profile

    def comparable(profile: Any) -> dict[str, Any]:
        data = anchored_profile(profile).model_dump(mode="json")  # as the run keeps it
        data["saving"].pop("output_dir")  # the same run folder: written relative or absolute
        return data

    try:
        return comparable(session.profile()) != comparable(run_profile(RunFolder(folder)))
    except (ProfileError, OSError):
        return False


def leaving_words(folder: Path, status: str | None) -> str:
    """What the shell is told when the wizard leaves the run in ``folder``; ``status``: how it ended (None: live).
    Paths are absolute: the shell may be opened anywhere later (after an SSH drop: in ~)."""
    folder = folder.absolute()
    if status is None:
        return f"Detached; {goes_on(folder)}"
    if status == "finished":
        return f"The run in {folder} has ended; its outputs and report are there."
    if status == "stopped":
        return f"The run in {folder} stopped (not finished). {resume_hint(RunFolder(folder))}"
    said = f"The run in {folder} {status} (not finished); its log is {folder}/logs/trainer.log."
    return f"{said} {resume_hint(RunFolder(folder))}" if status == CRASHED else said  # a failure says what to change first


def ask(engine: Any, folder: Path, what: str, stepped: bool) -> str:
    """Leave the dashboard's ``what`` request (stop, save, sample) for the trainer in ``folder``, unless it reads none any
    more; what its log then says. ``stepped``: the trainer has trained a step, as the events followed say."""
    from engine.runs.control import save_kept_words, stop_end_words, training_end
    from engine.runs.paused import paused_trainer, paused_words

    run = RunFolder(folder)
    end = training_end(run)  # requests are read at step boundaries: this one went unread, and "Stopping…" was untrue
    if end == "finished":
        return (f"Training is over: the final export and preview round are being written, and the run ends once they "
                f"are done; it takes no {what} request now.")
    if end:  # a stop's end writes neither
        return f"The run was stopped and is closing: {stop_end_words(run)}; it takes no {what} request now."
    engine.control(folder, what)
    # Past set-up, the trainer saves at its next step; attached a moment ago, the history may not be replayed yet.
    training = stepped or getattr(run.read_state(), "status", None) == "running"
    stopping = ("Stopping after a checkpoint…" if training
                else "Stopping before the first step: nothing new to save, so no checkpoint is written…")
    # A save's checkpoint the rotation deletes as any other: said as `dbtui save` says it.
    said = (" ".join(("Checkpoint requested…", save_kept_words(run))).rstrip() if what == "save"
            else {"stop": stopping, "sample": "Sample requested…"}[what])
    # A paused trainer acts on nothing until continued (`dbtui save` says so too): "Stopping…" alone would wait forever.
    paused = paused_trainer(run)
    return said if paused is None else f"{said} But {paused_words(paused, what)}."
