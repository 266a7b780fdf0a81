"""What a checkpoint whose state files fail to load is told as: which file, and the checkpoint to take instead."""

from __future__ import annotations

import os
import pickle
import shlex
from pathlib import Path
from types import TracebackType

from engine.runs.checkpoints import CheckpointError, complete_checkpoints
from engine.runs.folder import RunFolder


def load_failure(error: Exception, checkpoint: Path, folder: RunFolder) -> CheckpointError:
    """The refusal of ``checkpoint``, whose state accelerate's load_state failed to read with ``error``.

    A file that torch cannot unpickle (one overwritten, or cut short where its size still matches) fails with torch's
    "Weights only load failed" text, whose advice, to load it with weights_only=False, would run whatever the file
    holds: it is told as the damaged file it is, by its name, without torch's words. Other errors (a file cut short
    that a copy between machines left) keep torch's own words, which say what is wrong."""
    earlier = [str(kept) for _, kept in complete_checkpoints(folder) if kept != Path(checkpoint)]
    if isinstance(error, pickle.UnpicklingError) or "Weights only load failed" in str(error):
        loaded = _file_being_loaded(error.__traceback__)
        what = f"its {loaded.name}" if loaded else "one of its state files (optimizer.bin, scheduler.bin…)"
        said = f"checkpoint {checkpoint} is damaged and cannot be loaded: {what} is damaged"
    else:
        said = f"checkpoint {checkpoint} is damaged and cannot be loaded ({error})"
    return CheckpointError(f"{said}; resume from another one with `dbtui resume {shlex.quote(str(folder.path))} --from "
                           f"CHECKPOINT`" + (f" (kept: {', '.join(earlier)})" if earlier else ""))


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
