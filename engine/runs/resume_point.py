"""Resuming from a chosen checkpoint (``dbtui resume --from``), checked before a trainer starts.

A resume from an earlier checkpoint than the run's latest starts a new branch of the run. The
later checkpoints belong to the branch it leaves: were they left in ``RUN/checkpoints/``, the next
plain resume would take the old branch's latest and the rotation (``saving.keep_last_n``) would
delete the new branch's first checkpoints, the chosen one among them. So they are moved, whole,
into ``RUN/checkpoints-set-aside/``, where nothing resumes or deletes them.
"""

from __future__ import annotations

import time
from pathlib import Path

from engine.runs.checkpoints import CheckpointError, complete_checkpoints, read_manifest
from engine.runs.folder import RunFolder

SET_ASIDE = "checkpoints-set-aside"


def chosen_step(folder: RunFolder, checkpoint: Path) -> int:
    """The step of the checkpoint ``--from`` names, or a CheckpointError that lists the run's kept ones."""
    kept = complete_checkpoints(folder)
    listed = ("the run's kept checkpoints: " + ", ".join(str(path) for _, path in kept)) if kept else \
        f"the run has no complete checkpoint in {folder.checkpoints}"
    if not checkpoint.is_dir():
        raise CheckpointError(f"no checkpoint folder {checkpoint}; {listed}")
    try:
        return int(read_manifest(checkpoint)["step"])
    except (KeyError, ValueError, TypeError):
        raise CheckpointError(f"{checkpoint} is not a complete dbtui checkpoint (its manifest has no step); {listed}") from None
    except CheckpointError as error:
        raise CheckpointError(f"{error}; {listed}") from None


def set_aside_later(folder: RunFolder, step: int) -> list[Path]:
    """Move the run's checkpoints later than ``step`` into RUN/checkpoints-set-aside/TIME/; returns where they went."""
    later = [path for kept_step, path in complete_checkpoints(folder) if kept_step > step]
    if not later:
        return []
    aside = folder.path / SET_ASIDE / time.strftime("%Y%m%d-%H%M%S")
    aside.mkdir(parents=True, exist_ok=True)
    moved = []
    for path in later:
        target = aside / path.name
        path.rename(target)  # the same disk: a rename, never a copy
        moved.append(target)
    return moved
