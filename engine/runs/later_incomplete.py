"""Checkpoint folders after the latest complete one whose manifest is missing or damaged (a save or a deletion cut
short): an export or a resume of "the latest" takes the step before them, which is said, not done without a word."""

from __future__ import annotations

from pathlib import Path

from engine.events import Warning
from engine.runs.checkpoints import MANIFEST, complete_checkpoints
from engine.runs.folder import RunFolder


def incomplete_checkpoints(folder: RunFolder, found: list[tuple[int, Path]]) -> dict[int, Path]:
    """The run's checkpoint folders that are not among its complete ones ``found`` (no readable manifest), by the step
    their names say: they have nothing else to tell it by."""
    complete = {path for _, path in found}
    named = [(path.name.removeprefix("step-"), path) for path in folder.checkpoints.glob("step-*")]
    return {int(step): path for step, path in named if step.isdigit() and path.is_dir() and path not in complete}


def later_incomplete_warning(folder: RunFolder, step: int, doing: str, lost: str, cannot: str) -> Warning | None:
    """The warning that ``doing`` (exporting, resuming from) step ``step`` passes a later incomplete checkpoint, or
    None; ``lost`` is what that costs (formatted with the steps ``first`` and ``last`` it passes), ``cannot`` what such a folder cannot be."""
    complete = complete_checkpoints(folder)
    if any(at > step for at, _ in complete):  # a step chosen before the latest complete one: no step is lost to it
        return None
    later = {at: path for at, path in incomplete_checkpoints(folder, complete).items() if at > step}
    if not later:
        return None
    last = max(later)
    return Warning(message=f"{doing} step {step}, the latest complete checkpoint: {later[last]} (step {last}) is "
                           f"incomplete, its {MANIFEST} missing or damaged" + lost.format(first=step + 1, last=last),
                   advice=f"a save or a deletion cut short leaves such a folder, which {cannot}: remove it, or put back "
                          f"its {MANIFEST} if you have it")
