"""The file errors a run meets that come from the machine, not from dbtui: a folder made read-only, a
full disk or quota, a read-only or failing disk, the run folder deleted while it trains. Each becomes
a RunFilesError that names the file and says what to do, instead of a traceback reported as a bug."""

from __future__ import annotations

import contextlib
import errno
import os
import shlex
from collections.abc import Iterator
from pathlib import Path

from engine.errors import DbtuiError, os_error_in


class RunFilesError(DbtuiError):
    """Reading or writing a run's files failed for a reason of the machine's; ``advice`` says what to do."""

    def __init__(self, message: str, advice: str):
        super().__init__(message)
        self.advice = advice


def run_files_error(error: OSError, run_dir: Path, then: str | None = None,
                    machine_rank: int = 0, machines: int = 1) -> RunFilesError | None:
    """The RunFilesError for ``error``, or None when it is not one of the machine's (then it is a bug).
    ``then``: what to run once it is fixed (default: resume the run, as ``machine_rank`` of ``machines`` does)."""
    where = _shown_place(error.filename) if error.filename else "a file of the run"
    resume = then or how_it_goes_on(run_dir, machine_rank, machines)
    code = error.errno
    if code in (errno.ENOTDIR, errno.EEXIST, errno.EISDIR):
        # A rename names its target second: that, or the nearest folder of its path that is a file, is in the way
        # (RUN/exports a file: the folder RUN/exports/step-8, named by the error, was never there).
        named = Path(error.filename2 or error.filename) if error.filename else None
        blocking = next((path for path in (named, *named.parents) if path.exists() and not path.is_dir()), named) if named else None
        where = f"'{blocking}'" if blocking else "a file of the run"
        return RunFilesError(f"{where} is in the way: a file stands where dbtui writes a folder, or a folder where it "
                             "writes a file", f"move it out of the run folder; {resume}")
    if code in (errno.EACCES, errno.EPERM):
        return RunFilesError(f"permission denied on {where}",
                             f"make {run_dir} and what it holds writable by this user (`ls -l`, `chmod u+w`); {resume}")
    if code in (errno.ENOSPC, errno.EDQUOT):
        fewer = ", or lower saving.keep_last_n" if then is None else ""  # a run's checkpoints; an export writes none
        return RunFilesError(f"the disk is full (or the quota used up) writing {where}",
                             f"free some space (`df -h {shlex.quote(str(_filled(error, run_dir)))}`){fewer}; {resume}")
    if code == errno.EROFS:
        # The run trains where its folder is, started anew or resumed: no saving.output_dir moves it.
        elsewhere = "" if then else f". Or {resume_a_copy('a folder on a writable disk', main_machine=not machine_rank)}"
        return RunFilesError(f"the file system holding {where} is read-only",
                             f"remount it writable; {resume}{elsewhere}")
    if code == errno.EIO:
        return RunFilesError(f"the disk reported an input/output error on {where}",
                             "the disk may be failing (see `dmesg`); copy the run folder to another disk and resume it there")
    if code == errno.ENOENT and not Path(run_dir).is_dir():
        again = ("start the run again (`dbtui run PROFILE`), or resume it where you moved it (`dbtui resume FOLDER`)"
                 if not machine_rank else
                 f"start this machine's part again (`dbtui run PROFILE --set launch.machine_rank={machine_rank}`), or "
                 "resume it where you moved it (add `--resume --set saving.output_dir=` the folder that holds it)")
        return RunFilesError(f"the run folder {run_dir} is gone: it was moved or deleted while the run trained", again)
    return None


def _filled(error: OSError, run_dir: Path) -> Path:
    """The folder whose disk filled: the nearest that is there of the failed write's path (its file, or a hidden
    temporary folder, removed as the write failed); the run folder where the error names no file. `df -h RUN` showed
    the run folder's disk, where outputs/ or checkpoints/ may be a mount of its own."""
    if not isinstance(error.filename, (str, bytes)) or not error.filename:
        return Path(run_dir)
    path = Path(os.path.abspath(os.fsdecode(error.filename)))
    return next(place for place in (path, *path.parents) if place.is_dir())


def named_full_disk(error: Exception, written: Path) -> OSError | None:
    """A full disk or quota that ``error`` says without a file (a write fails as its file closes, and such an error
    names none), as the same error naming ``written``, the folder being written: "writing a file of the run" left the
    user to guess which disk to free. None for any other error, or one that names its file."""
    machine = os_error_in(error)
    if machine is None or machine.filename or machine.errno not in (errno.ENOSPC, errno.EDQUOT):
        return None
    return OSError(machine.errno, machine.strerror, str(written))


def kept_for_export(error: Exception, run_dir: Path, step: int, checkpoint: Path, machines: int = 1) -> RunFilesError | None:
    """The final export's file error where a checkpoint of its last step (``checkpoint``) keeps the weights trained:
    the default advice sent the user to train from the last checkpoint, or from the start. None for a bug's error.
    ``machines``: the run's; machine 0's resume waits for the others' (each in its own folder on a disk of its own)."""
    machine = os_error_in(error) or _said_as_conversion(error, Path(run_dir) / "outputs")
    then = (f"then `dbtui resume {shlex.quote(str(run_dir))}` exports the weights trained, kept in the checkpoint of "
            f"step {step} ({checkpoint}), without training again")
    if machines > 1:
        then += (", with every other machine N resuming its part (`dbtui run PROFILE --resume --set "
                 f"launch.machine_rank=N`; on a disk of its own, with machine 0's checkpoints/{checkpoint.name} copied "
                 "into its checkpoints/ first)")
    return run_files_error(machine, run_dir, then=then) if machine is not None else None


def _said_as_conversion(error: Exception, outputs: Path) -> OSError | None:
    """The machine's error that the export's writers (engine/convert/_files.py) said as a conversion's: a full disk, or a
    folder that cannot be written (this user may not, or its file system is read-only). Their advice, to choose another output, is none a run can take, and said alone it
    left out the checkpoint that keeps the weights trained. None for any other error."""
    from engine.convert.errors import NotEnoughDiskError, OutputNotWritableError

    if isinstance(error, NotEnoughDiskError):
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(outputs))
    if isinstance(error, OutputNotWritableError):  # not permitted, or a read-only file system
        return OSError(error.errno, os.strerror(error.errno), str(error.place))
    return None


def _shown_place(filename: str | bytes | int) -> str:
    """``filename`` as the user knows it: a file in an output's hidden temporary (``.NAME.….partial``, removed as the
    write fails, see engine/convert/partials.py) is said as the output folder that holds it, the outputs already
    there kept as they were; named itself, it sent the user looking for a folder that no longer exists."""
    path = Path(str(filename))
    hidden = [place for place in (path, *path.parents) if place.name.startswith(".") and place.name.endswith(".partial")]
    if not hidden:
        return f"'{filename}'"
    return f"'{hidden[-1].parent}' (its unfinished files were removed; the outputs already there are kept)"


def how_it_goes_on(run_dir: Path, machine_rank: int = 0, machines: int = 1) -> str:
    """"then …": how machine ``machine_rank`` of ``machines`` goes on with the run once what stopped it is fixed: from
    its latest complete checkpoint, or, where it saved none, from the start; machine N (not 0) with its own part."""
    from engine.runs.checkpoints import complete_checkpoints
    from engine.runs.folder import RunFolder

    kept = bool(complete_checkpoints(RunFolder(Path(run_dir))))
    if machine_rank:
        return f"then {resume_machine_part(run_dir, machine_rank, kept)}"
    if kept:
        return f"then `dbtui resume {shlex.quote(str(run_dir))}` continues from its latest checkpoint"
    return again_from_the_start(run_dir, machines)


def again_from_the_start(run_dir: Path, machines: int) -> str:
    """How machine 0 trains a run that saved no checkpoint again: a resume of several machines needs one (the launcher
    starts a lone machine's resume afresh, but each of several must find the checkpoint it resumes from)."""
    if machines > 1:
        return ("then `dbtui run PROFILE` on every machine, as the run was started (without --resume: it has no "
                "checkpoint to resume from), trains it again from the start")
    return f"then `dbtui resume {shlex.quote(str(run_dir))}` trains it again from the start: it has no checkpoint"


def resume_machine_part(run_dir: Path, machine_rank: int, kept: bool, profile: str = "PROFILE") -> str:
    """How machine ``machine_rank`` (not 0) goes on, ``kept``: whether ``run_dir`` holds a complete checkpoint (on a
    disk of its own, only once machine 0's is copied there). Its `dbtui resume` is refused where the folder holds only
    its own files, and on a disk the machines share trains profile.toml, machine 0's part. ``profile``: the profile
    file as the user named it, shell-quoted, where it is known (`dbtui run` on that machine)."""
    from engine.runs.launcher import machine_profile
    from engine.runs.folder import RunFolder

    told = (f"add the --set values this machine was started with: they are kept in "
            f"{machine_profile(RunFolder(Path(run_dir)), machine_rank)}")
    if kept:
        return (f"`dbtui run {profile} --resume --set launch.machine_rank={machine_rank}` resumes this machine's part "
                f"from the latest checkpoint, as machine 0 resumes the run ({told})")
    return (f"`dbtui run {profile} --set launch.machine_rank={machine_rank}` trains this machine's part again from the "
            f"start, as machine 0 starts the run again: {run_dir} holds no checkpoint (where machine 0 resumes from one, "
            f"copy it here and add --resume; {told})")


def resume_a_copy(where: str, main_machine: bool = True) -> str:
    """What a run whose folder cannot be used where it is can do instead: a resume never moves the run folder (no
    saving.output_dir does), but a copy keeps its checkpoints and stored profile. engine/runs/folder_refusals.py's
    unusable_folder says it in the same words for a resume the launcher refuses. A machine other than 0 (not
    ``main_machine``) resumes its part with `dbtui run`: `dbtui resume` trains the profile.toml kept there, machine 0's
    part, or is refused where the folder holds only this machine's files."""
    if main_machine:
        return f"copy the run folder to {where} and resume the copy (`dbtui resume COPY`)"
    return (f"copy the run folder to {where}, under its own name, and resume this machine's part from there: its "
            "`dbtui run PROFILE --resume` with `--set saving.output_dir=` the folder that holds the copy (not `dbtui "
            "resume`, which trains machine 0's part)")


@contextlib.contextmanager
def said_as_run_files_error(run_dir: Path, then: str) -> Iterator[None]:
    """Inside, an OSError of the machine's becomes its RunFilesError (``then``: the command to run once it is fixed);
    any other stays as it is (a bug)."""
    try:
        yield
    except Exception as error:
        machine = os_error_in(error)
        said = run_files_error(machine, run_dir, then=then) if machine is not None else None
        if said is None:
            raise
        raise said from None


def base_model_gone(source: str, model_folder: Path, run_dir: Path, *, vae: str | None,
                    tokenizer: str | None) -> RunFilesError | None:
    """The export at a run's end reads the base model's frozen parts again: its folder (``model_folder``, for
    model.pretrained ``source``), or a part of it, was deleted while the run trained. None where the folder is whole
    (the export failed for another reason)."""
    from engine.models.folder_parts import missing_parts
    from engine.runs.checkpoints import complete_checkpoints
    from engine.runs.folder import RunFolder

    missing = missing_parts(model_folder, vae=vae, tokenizer=tokenizer) if model_folder.is_dir() else None
    if missing == []:
        return None
    kept = complete_checkpoints(RunFolder(Path(run_dir)))
    resume = (f"then `dbtui resume {shlex.quote(str(run_dir))}` continues from its latest checkpoint (step {kept[-1][0]}) "
              "and exports at its end" if kept else again_from_the_start(run_dir, 1))
    if missing is None and Path(source).expanduser() != model_folder:
        # Not a folder the profile names: a hub model's download (or dbtui's conversion of a file), which a resume
        # makes again; its folder in a cache is no place to put a model back.
        return RunFilesError(f"dbtui's copy of the base model {source} ({model_folder}) is gone: it was deleted while "
                             "the run trained (a Hugging Face cache cleared, say), and the final export reads the base "
                             "model's parts", f"`dbtui resume {shlex.quote(str(run_dir))}` downloads (or converts) it "
                             "again, then " + (f"continues from its latest checkpoint (step {kept[-1][0]}) and exports at "
                                               "its end" if kept else "trains the run again from the start: it has no "
                                               "checkpoint"))
    if missing is None:
        return RunFilesError(f"the base model folder {model_folder} is gone: it was moved or deleted while the run "
                             "trained, and the final export reads the base model's parts", f"put the model back there; {resume}")
    parts = ", ".join(part.split(" ")[0] for part in missing)
    return RunFilesError(f"the base model folder {model_folder} no longer has {', '.join(missing)}, which the final "
                         "export reads: it was changed while the run trained", f"put {parts} back; {resume}")
