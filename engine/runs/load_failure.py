"""What a checkpoint whose state files fail to load is told as: which file, and what to do instead."""

from __future__ import annotations

import json
import os
import pickle
import re
import shlex
from importlib import metadata
from pathlib import Path
from types import TracebackType

from engine.events import marked_lines
from engine.runs.checkpoints import CheckpointError, complete_checkpoints
from engine.runs.folder import RunFolder

# torch's words for a pickle that names a function or class its weights-only loader does not allow.
_UNSUPPORTED = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")


def load_failure(error: Exception, checkpoint: Path, folder: RunFolder) -> CheckpointError:
    """The refusal of ``checkpoint``, whose state accelerate's load_state failed to read with ``error``.

    A file that torch cannot unpickle fails with torch's "Weights only load failed" text, whose advice, to load it
    with weights_only=False, would run whatever the file holds: it is told by its name, without torch's words. Where
    torch names a global it does not allow ("Unsupported global: GLOBAL numpy.core.multiarray…", after numpy 1 → 2),
    the file is whole but was written with other library versions, and every checkpoint of the run fails alike: the
    advice is those versions, not another checkpoint. Any other such file is damaged (one overwritten, or cut short
    where its size still matches). Other errors (a file cut short that a copy between machines left) keep torch's own
    words, which say what is wrong."""
    done = complete_checkpoints(folder)
    earlier = [str(kept) for _, kept in done if kept != Path(checkpoint)]
    unpickling = isinstance(error, pickle.UnpicklingError) or "Weights only load failed" in str(error)
    loaded = _file_being_loaded(error.__traceback__) if unpickling else None
    what = f"its {loaded.name}" if loaded else "one of its state files (optimizer.bin, scheduler.bin…)"
    unsupported = _UNSUPPORTED.search(str(error)) if unpickling else None
    if unsupported:
        step = next((step for step, kept in done if kept == Path(checkpoint)), None)
        return CheckpointError(_other_versions(checkpoint, folder, what, unsupported.group(1), step))
    if unpickling:
        said = f"checkpoint {checkpoint} is damaged and cannot be loaded: {what} is damaged"
    else:
        said = f"checkpoint {checkpoint} is damaged and cannot be loaded ({error})"
    return CheckpointError(f"{said}; resume from another one with `dbtui resume {shlex.quote(str(folder.path))} --from "
                           f"CHECKPOINT`" + (f" (kept: {', '.join(earlier)})" if earlier else ""))


def _other_versions(checkpoint: Path, folder: RunFolder, what: str, name: str, step: int | None) -> str:
    """The refusal of a checkpoint whose state file names ``name``, a global this torch does not allow."""
    here = ", ".join(f"{package} {version}" for package in dict.fromkeys(("torch", name.split(".")[0]))
                     if (version := _installed(package)))
    # The checkpoint's manifest records no library versions; the run's start events do (not numpy's, though).
    made = _versions_of_the_start(folder.events, step)
    versions = (f"as the run's {folder.events.name} records them for the start that made it: "
                + ", ".join(f"{package} {version}" for package, version in made.items())) if made else \
        "the run's events record none"
    export = f"`dbtui export {shlex.quote(str(folder.path))}" + (f" --step {step}`" if step is not None else "`")
    return (f"checkpoint {checkpoint} cannot be loaded: {what} holds {name}, which torch's weights-only loader does "
            f"not allow here ({here}). The file is most likely intact but written with other library versions than "
            f"this machine's, and every checkpoint of the run made with them fails alike, so another one will not help. "
            f"Resume it with the versions it was made with installed ({versions}); or keep the model as it is at that "
            f"step: {export} reads only its trained weights")


def _installed(package: str) -> str | None:
    """The installed version of ``package``; None for a module of Python's own (datetime) or one not installed."""
    try:
        return metadata.version(package)
    except (metadata.PackageNotFoundError, ValueError):
        return None


def _versions_of_the_start(events: Path, step: int | None) -> dict[str, str]:
    """The library versions of the run's last start before ``step`` (its run_started event's), which wrote the
    checkpoint of that step; {} where none can be read."""
    found: dict[str, str] = {}
    try:
        starts = list(marked_lines(events, (b'"run_started"',)))  # a start's line a start: a few
    except OSError:
        return found
    for line in starts:
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if not isinstance(data, dict) or data.get("event") != "run_started":
            continue
        from_step, versions = data.get("resumed_from_step", 0), data.get("versions")
        if isinstance(versions, dict) and (step is None or not isinstance(from_step, int) or from_step < step):
            found = {str(name): str(version) for name, version in versions.items() if name != "dbtui"}
    return found


def _file_being_loaded(traceback: TracebackType | None) -> Path | None:
    """The file the innermost ``load(f, …)`` of the traceback was reading (accelerate's and torch's both name it
    ``f``), when it was given by its path."""
    found = None
    while traceback is not None:
        frame = traceback.tb_frame
        given = frame.f_locals.get("f") if frame.f_code.co_name == "load" else None
        if isinstance(given, (str, os.PathLike)):
            found = Path(given)
        traceback = traceback.tb_next
    return found
