"""Exact copies (the same bytes under another name or in another sub-folder) and near-duplicates, told apart."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from engine.dataset.duplicates import duplicate_groups
from engine.dataset.image_probe import ImageProbe
from engine.dataset.report import Finding, named_under

# A grey copy this flat (Laplacian variance in grey levels²) has no structure for pHash to describe: every
# plain image hashes alike, whatever its colour, so it is left out of the comparison (the blur check names it).
FEATURELESS = 1.0
_NEAR_FIX = "keep the best one: duplicates weigh that pose more and push towards overfitting"


def exact_copy_groups(paths: list[str]) -> list[list[str]]:
    """Groups (each sorted, two or more paths) of files with the same bytes. Only files of one size are read and
    hashed: most folders have none, so a check of thousands of photos reads no file twice."""
    by_size: dict[int, list[str]] = {}
    for path in paths:
        try:
            by_size.setdefault(os.stat(path).st_size, []).append(path)
        except OSError:  # gone since it was probed: nothing to compare
            continue
    by_content: dict[bytes, list[str]] = {}
    for same_size in (group for group in by_size.values() if len(group) > 1):
        for path in same_size:
            try:
                with open(path, "rb") as file:
                    by_content.setdefault(hashlib.file_digest(file, "sha256").digest(), []).append(path)
            except OSError:
                continue
    return sorted((sorted(group) for group in by_content.values() if len(group) > 1), key=lambda group: group[0])


def copy_findings(probes: list[ImageProbe], max_distance: int, root: Path) -> tuple[list[Finding], list[list[str]]]:
    """``exact_copy`` on each copy after the first of a group of identical files, ``near_duplicate`` on look-alikes
    (an exact group is one picture there, its first); and the exact groups, which the summary does not count twice.
    Files are named by their path under ``root``, the checked folder."""
    usable = [p for p in probes if p.ok]
    groups = exact_copy_groups([p.path for p in usable])
    found = []
    for first, *copies in groups:
        for path in copies:
            # The run trains each file as an image of its own (engine.data.examples): said, not changed.
            found.append(Finding(path, "exact_copy", "warning",
                                 f"is an exact copy of {named_under(first, root)} (the same file content): it is not "
                                 "counted in the suggested training steps, but a run trains each copy as an image of "
                                 f"its own, so this photo weighs ×{len(copies) + 1}",
                                 "delete the copies you do not mean to train: extra weight on one photo pushes "
                                 "towards overfitting"))
    repeated = {path for _, *copies in groups for path in copies}
    hashes = {p.path: p.phash for p in usable if p.sharpness >= FEATURELESS and p.path not in repeated}
    for group in duplicate_groups(hashes, max_distance):
        for path in group:
            others = ", ".join(named_under(o, root) for o in group if o != path)
            found.append(Finding(path, "near_duplicate", "warning", f"is a near-duplicate of {others}", _NEAR_FIX))
    return found, groups
