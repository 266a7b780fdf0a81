"""Which checkpoints a run keeps: the latest ``saving.keep_last_n`` and the best-scored step's (``kept_best_steps``)."""

from __future__ import annotations

import shutil
from collections.abc import Callable

from engine.evaluation.best import kept_best_steps
from engine.events import CheckpointsRotated, Event
from engine.runs.checkpoints import MANIFEST, PARTIAL, checked_checkpoints, complete_checkpoints
from engine.runs.folder import RunFolder


def rotate(folder: RunFolder, keep_last_n: int, emit: Callable[[Event], None]) -> list[str]:
    """Delete all but the latest ``keep_last_n`` checkpoints and those ``kept_best_steps`` names, the steps deleted told
    to ``emit`` (CheckpointsRotated); returns the names of the folders deleted. Runs on the main process only, which alone
    writes events.jsonl: the scores so far are all there."""
    found = complete_checkpoints(folder)
    # Whatever this attempt's evaluation setting: an earlier one's scores still name the run's best step. A damaged
    # checkpoint of it would be kept in place of the next best whole one, which no export could then be made from.
    best = kept_best_steps(folder.events, checked_checkpoints(folder)[0])
    removed, steps = [], []
    for step, path in found[:-keep_last_n]:
        if step in best:
            continue
        # The manifest goes first: a delete cut short (a kill, a power loss) leaves no checkpoint that looks
        # complete with its weights gone, and the folder is cleared at the next rotation.
        (path / MANIFEST).unlink(missing_ok=True)
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path.name)
        steps.append(step)
    if steps:  # logged: the best step's advice tells a checkpoint the rotation deleted from one deleted by hand
        emit(CheckpointsRotated(steps=steps, keep_last_n=keep_last_n))
    for path in folder.checkpoints.glob("step-*"):
        if not path.name.endswith(PARTIAL) and not (path / MANIFEST).exists():
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path.name)
    return removed
