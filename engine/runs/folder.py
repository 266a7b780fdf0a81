"""The layout of a run folder and its small state file.

    RUN/profile.toml      the resolved profile the trainer runs
    RUN/events.jsonl      every event, one JSON object a line (the public format)
    RUN/state.json        pid, status, step, total, heartbeat — rewritten atomically
    RUN/control/          requests from viewers: files named stop, save, sample
    RUN/checkpoints/      step-XXXXXXXX/ folders with a manifest.json each
    RUN/samples/          step-XXXXXX/ preview images and a grid
    RUN/outputs/          the final model
    RUN/logs/             trainer.log (stdout and stderr of the trainer process)
    RUN/trainer.lock      locked (flock) by the one trainer of this folder for its whole life
    RUN/.launching        locked while a launcher checks the folder and starts its trainer
    RUN/.scored-lines.json  the best-step rule's lines of the log and how far they were read (evaluation/scored_lines)
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from engine.events import RunFailed, RunFinished
from engine.runs.folder_refusals import RunFolderError, unusable_folder
from engine.runs.held_file import held
from engine.runs.last_events import last_finish, last_marked, last_step
from engine.runs.trainer_process import trainer_alive
from engine.support.json_file import is_number
from engine.support.plain_path import plain_path
from engine.support.run_marks import EVENTS_FILE, STATE_FILE, holds_run_files, profile_machine


def run_dir_for(profile: Any) -> Path:
    """Where a profile's run lives: <saving.output_dir>/<name>, without the detours the output_dir was written with
    (``runs/../runs``): the commands and hints said after name it so."""
    return plain_path(Path(profile.saving.output_dir) / profile.name)


def check_creatable(path: Path) -> None:
    """Raise RunFolderError unless ``path`` can be made a folder and written in; leaves nothing behind.

    Tried for real rather than judged from permissions: root passes every permission check,
    yet a read-only or special file system still refuses.
    """
    made = []
    probe = path
    try:
        while not probe.exists() and probe != probe.parent:
            made.append(probe)
            probe = probe.parent
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as error:
        raise unusable_folder(path, error) from None
    finally:
        for folder in made:  # deepest first; only the empty folders made here
            try:
                folder.rmdir()
            except OSError:
                break


ACTIVE = ("starting", "running")  # what the trainer writes while it works
CRASHED = "crashed"  # what we say when it wrote one of those and its process is gone


@dataclass(frozen=True)
class RunState:
    pid: int
    status: str  # "starting", "running", "finished", "failed", "stopped"
    step: int = 0
    total_steps: int = 0
    heartbeat: float = 0.0
    last_loss: float | None = None
    started: float = 0.0


@dataclass(frozen=True)
class RunFolder:
    path: Path

    @property
    def profile(self) -> Path:
        return self.path / "profile.toml"

    @property
    def events(self) -> Path:
        return self.path / EVENTS_FILE

    @property
    def state_file(self) -> Path:
        return self.path / STATE_FILE

    @property
    def control(self) -> Path:
        return self.path / "control"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def samples(self) -> Path:
        return self.path / "samples"

    @property
    def outputs(self) -> Path:
        return self.path / "outputs"

    @property
    def log(self) -> Path:
        return self.path / "logs" / "trainer.log"

    @property
    def lock(self) -> Path:
        return self.path / "trainer.lock"

    @property
    def launching(self) -> Path:
        return self.path / ".launching"

    def create(self, *, resumed: bool = False, main_machine: bool = True) -> RunFolder:
        try:
            for folder in (self.path, self.control, self.checkpoints, self.samples, self.log.parent):
                folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:  # a resume's advice is not saving.output_dir's, which moves no run (unusable_folder)
            raise unusable_folder(self.path, error, resumed=resumed, main_machine=main_machine) from None
        return self

    def read_state(self) -> RunState | None:
        """The state file's contents, or None when it is missing or damaged (a value of the wrong type included)."""
        try:
            state = RunState(**json.loads(self.state_file.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            return None
        return state if _well_typed(state) else None

    def write_state(self, state: RunState) -> None:
        tmp = self.state_file.with_name(f".state.{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps(asdict(state)), encoding="utf-8")
        except OSError as error:
            # A full disk fails the write as the file closes, with no file named: the run's failure names state.json.
            tmp.unlink(missing_ok=True)
            raise OSError(error.errno, error.strerror, str(self.state_file)) from error
        os.replace(tmp, self.state_file)

    def finished_step(self) -> int | None:
        """The step a finished run ended at (its outputs/ hold that step), else None: by the state file, or by the
        event log where the state file says otherwise (missing, damaged, or not yet rewritten when the trainer was
        killed after its last event), so that a finished run is never trained over again; where the events' finish
        is damaged too, by its outputs. Not where a trainer started since wrote the state file: the run is that
        attempt's, as ``status`` says it."""
        state = self.read_state()
        if state is not None and state.status == "finished":
            return state.step
        finish = self._finish_by_events(state)
        return self._finish_by_outputs(state) if finish is None else finish.step

    def status(self) -> str:
        """The run's status in one word (see ``run_status``): "finished" too where its state file is lost, damaged or
        was not rewritten (the trainer killed after its last event) and its events say it finished; without a state
        file, the one its events tell (engine/runs/events_state)."""
        from engine.runs.events_state import state_from_events

        state = self.read_state()
        status = run_status(state or state_from_events(self), self.path)
        if (state is None or status == CRASHED) and (self._finish_by_events(state) or self._finish_by_outputs(state)) is not None:
            return "finished"
        failed = last_marked(self.events, (b'"run_failed"', b'"run_started"')) if status == CRASHED and state else None
        # Its failure told in the events, then its state file's refused (a full disk): failed, not gone without a word.
        return "failed" if isinstance(failed, RunFailed) and state and failed.time >= state.started else status

    def _finish_by_events(self, state: RunState | None) -> RunFinished | None:
        """The events' finish, unless the state file is a trainer's started after it: a finished run resumed and killed
        in its set-up (its RunStarted comes after the models load) is that attempt's, crashed, not finished."""
        finish = last_finish(self.events)
        if finish is None or (state is not None and is_number(finish.time) and state.started > finish.time):
            return None
        return finish

    def _finish_by_outputs(self, state: RunState | None) -> int | None:
        """The step of a run whose outputs say it finished: the trainer writes outputs/profile.toml once its final
        model is whole, so it stands where the state file is lost and the events' finish is damaged (skipped by their
        reader). Not where the state says how the trainer ended (a final preview that failed after the outputs: "failed",
        as ``status`` says, and resumed so), nor where a trainer started after it: a finished run resumed by an older
        dbtui is that attempt's."""
        if state is not None and state.status not in ACTIVE:
            return None
        try:
            written = (self.outputs / "profile.toml").stat().st_mtime
        except OSError:
            return None
        if state is not None and state.started > written:
            return None
        step = last_step(self.events)
        return step if step is not None else state.total_steps if state is not None else 0

    def is_live(self) -> bool:
        """True while a trainer process holds this folder; without a state file, as its events tell, as ``status`` says."""
        from engine.runs.events_state import state_from_events

        return run_status(self.read_state() or state_from_events(self), self.path) in ACTIVE

    def gone(self) -> bool:
        """Whether the run's files were deleted since it was listed (`rm -rf` in another shell): what was read of it
        then is no run's. A disk's error keeps it, as ``list_runs`` keeps a folder it could read."""
        try:
            return not holds_run_files(self.path)
        except OSError:
            return False

    def last_active(self) -> float:
        """When the run last trained: its heartbeat, else when it started, else when its events or its folder last
        changed. Not the folder's own time, which a report, an export or a copy into it sets long after. A time to
        come is a damaged state file's."""
        state, now = self.read_state(), time.time()
        moments = (state.heartbeat, state.started) if state is not None else ()
        return next((moment for moment in moments if 0 < moment <= now), 0.0) or modified(self.events) or modified(self.path)


def run_status(state: RunState | None, run_dir: Path) -> str:
    """A run's status in one word, the same for the CLI, the wizard and the browser: the state
    file's own, "crashed" when it says starting or running but its process is gone (killed, out
    of memory, the machine rebooted), or "unknown" when there is no readable state file."""
    if state is None:
        return "unknown"
    if state.status in ACTIVE and not (held(RunFolder(run_dir).lock) or trainer_alive(state.pid, run_dir)):
        return CRASHED
    return state.status


def _well_typed(state: RunState) -> bool:
    numbers = (state.step, state.total_steps, state.heartbeat, state.started,
               0 if state.last_loss is None else state.last_loss)
    return (type(state.pid) is int and isinstance(state.status, str)
            and all(is_number(n) for n in numbers))


def modified(path: Path) -> float:
    """When ``path`` last changed; 0 for one that went away meanwhile (a run folder deleted while listed)."""
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def list_runs(output_dir: Path, on_skip: Callable[[RunFolderError], None] | None = None) -> list[RunFolder]:
    """Run folders under ``output_dir`` (those with an events log), the one that trained last first. One that cannot be
    looked into for another reason than its permissions (a disk or network error) is left out, and said to ``on_skip``
    (by default on stderr): one folder's error does not hide the others, nor is it dropped unsaid."""
    output_dir = Path(output_dir)
    try:
        if not output_dir.is_dir():
            return []
        children = list(output_dir.iterdir())
    except OSError as error:
        raise unreadable(output_dir, error) from None
    runs = []
    for child in children:
        try:
            if holds_a_run(child):
                runs.append(RunFolder(child))
        except RunFolderError as error:
            (on_skip or _said_on_stderr)(error)
    return sorted(runs, key=RunFolder.last_active, reverse=True)


def _said_on_stderr(error: RunFolderError) -> None:
    print(f"dbtui: {error}; it is left out of the list of runs", file=sys.stderr, flush=True)


def holds_a_run(path: Path) -> bool:
    """Whether a trainer was ever started in ``path`` (the launcher writes its state before it runs). False for a
    folder this user may not look into (another user's run, a file system's lost+found): listings skip it, and
    ``look_into`` says why of one named on purpose. Any other error (a disk's, a network file system's) is a
    RunFolderError: reading it as no run would drop a run from listings, or take its folder for a new one."""
    try:
        return holds_run_files(path)
    except PermissionError:  # Python 3.11's exists() raises for EACCES
        return False
    except OSError as error:
        raise unreadable(path, error) from None


def look_into(path: Path) -> None:
    """Raise RunFolderError where this user may not look into ``path``: a run named there would read as no run."""
    try:
        holds_run_files(path)
    except OSError as error:
        raise unreadable(path, error) from None


def unreadable(path: Path, error: OSError) -> RunFolderError:
    """The error for a run's file or folder (or a folder of runs) the OS would not let this user read: what to do. An
    error other than a permission's (a name too long, a disk's or a network file system's) is said as it is."""
    if not isinstance(error, PermissionError):
        return RunFolderError(f"cannot read {path}: {error.strerror or error}")
    shown = shlex.quote(str(path))
    return RunFolderError(f"cannot read {path}: {error.strerror or error}; it belongs to another user, or its mode shuts "
                          f"this user out (`ls -ld {shown}` shows both): its owner can let others read it (`chmod -R a+rX "
                          f"{shown}`), or run dbtui as its owner")


# What dbtui puts in a run folder before its trainer writes state.json or events.jsonl: the folders RunFolder.create
# makes, another machine's cache, model copy and report of a failure. Hidden names (the launch lock, temporary files,
# a desktop's .DS_Store) and a file system's lost+found are no one's work a run could write over.
_MADE_BEFORE_THE_RUN = frozenset({"control", "checkpoints", "samples", "logs", "cache", "model", "traceback.txt",
                                  "lost+found"})


def foreign_entries(folder: RunFolder) -> list[str]:
    """What a folder that holds no run has that dbtui did not put there (the user's files, a profile, photos): a run
    started there would write its profile.toml and report.html over theirs and its folders among them."""
    if holds_a_run(folder.path):
        return []
    try:
        names = os.listdir(folder.path)
    except OSError:  # none yet, or not a folder: creating it says what is wrong
        return []
    return sorted(name for name in names if name not in _MADE_BEFORE_THE_RUN and not name.startswith(".")
                  and profile_machine(name) is None)

