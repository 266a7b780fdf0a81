"""Why a run cannot start (or resume) in its run folder: it holds checkpoints, a finished run, the user's own files,
a live trainer, or nothing to resume. Each message says what to do; the wizard reads their fields to say it its own way."""

from __future__ import annotations

import shlex
from pathlib import Path

from engine.runs.folder import RunFolderError


class RunExistsError(RunFolderError):
    """The run folder already holds work; the user must say whether to resume or start anew. The message says how with
    the CLI; ``folder`` and ``step`` (its latest checkpoint's) let the wizard say it its own way."""

    def __init__(self, folder: Path, step: int) -> None:
        super().__init__(f"{folder} already has checkpoints (up to step {step}). Resume it with "
                         f"`dbtui resume {shlex.quote(str(folder))}` (its own profile and overrides), or start a new run "
                         f"with `--set name=NEW_NAME`.")
        self.folder, self.step = folder, step


class RunFinishedError(RunFolderError):
    """The run folder holds a finished run: neither a resume nor a re-run may replace its outputs."""


class NotARunFolderError(RunFolderError):
    """The run folder holds the user's own files, no run: a run there would write over them or mix with them. The
    message says what to do with the CLI; ``folder`` and ``said`` (what it holds) let the wizard say it its own way."""

    def __init__(self, folder: Path, foreign: list[str], shown: str) -> None:
        self.folder, self.said = folder, ", ".join(foreign[:4]) + (" and more" if len(foreign) > 4 else "")
        super().__init__(f"{folder} is not a run folder: it holds {self.said}, which a run would write over or mix with "
                         f"its own files. Give the run a folder of its own: `dbtui run {shown} --set name=NEW_NAME` (the "
                         "run folder is saving.output_dir/name).")


class RunLiveError(RunFolderError):
    """A trainer is already running in the run folder: it is watched, not started again."""

    def __init__(self, folder: Path) -> None:
        super().__init__(f"a trainer is already running in {folder}; `dbtui attach {shlex.quote(str(folder))}` to watch it")
        self.folder = folder


class MachineLiveError(RunFolderError):
    """This machine's part of a run of several machines is already started: a second launcher for the same machine
    would take the first one's line in the log for its own meeting, and train as a machine too many. Its trainers found
    by their lock may run on another machine that started the same part, where the run folder is on a disk they share
    (NFS); where the disk has no locks they are not found."""

    def __init__(self, folder: Path, rank: int, pid: int, *, launcher_ended: bool = False) -> None:
        if launcher_ended:  # killed hard, it left its trainers (each in a session of its own) waiting or training
            # pid 0: its lock is held, its pid not yet written; `kill 0` would signal the user's own process group.
            first, end = (f"the first: pid {pid}", f"`kill {pid}` and this run's other trainers there") if pid else (
                "the first: a trainer, its pid not yet written", "this run's trainers there")
            super().__init__(f"machine {rank} of the run in {folder} is still trained by trainers whose launcher has "
                             f"ended ({first}), on this machine or, where the run folder is on a disk that machines "
                             f"share, on another that started machine {rank}: watch and stop the run on machine 0, or end "
                             f"them ({end}, as `ps -ef` lists them; the run then fails on every machine); start it again "
                             "only after that")
        else:
            super().__init__(f"machine {rank} of the run in {folder} is already started on this machine (pid {pid}): "
                             f"watch and stop the run on machine 0. `kill {pid}` ends this machine's part (once it trains "
                             "with the run, the run then fails on every machine); start it again only after that")
        self.folder, self.rank, self.pid = folder, rank, pid


class NoRunToResumeError(RunFolderError):
    """A resume was asked for where no run was ever started (a misspelt name, another working folder)."""
