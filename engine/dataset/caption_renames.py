"""The renames that have a misnamed caption file read (photo.jpg.txt or Photo.TXT for photo.jpg): said alike by the
check, prepare, the bulk edits and --auto."""

from __future__ import annotations

import os
from pathlib import Path

from engine.dataset.files import caption_path


def rename_advice(expected: Path, near: Path, owners: list[Path], extension: str) -> str:
    """What to rename so that ``near`` is read as the caption ``expected`` of its image(s) ``owners``.

    y.jpg and y.png both read y.txt: renaming y.png.txt to y.txt alone would give y.jpg y.png's caption too, so every
    image but the one ``near`` was written for is first renamed apart, with its own caption where it has one."""
    if len(owners) < 2:
        return f"rename {near.name} to {expected.name}"
    names = ", ".join(o.name for o in owners[:-1]) + " and " + owners[-1].name
    keeper = next((o for o in owners if o.name.casefold() == near.stem.casefold()), owners[-1])
    # Every other image renamed apart: with three (y.jpg, y.png, y.webp), one renamed left two reading y.txt.
    renames, number = [], 2
    for apart in (o for o in owners if o is not keeper):
        while os.path.lexists(renamed := apart.with_name(f"{apart.stem}_{number}{apart.suffix}")) or os.path.lexists(
                caption_path(renamed, extension)):
            number += 1
        number += 1
        own = apart.with_name(apart.name + caption_path(apart, extension).suffix)
        its_caption = f" and {own.name} to {caption_path(renamed, extension).name}" if os.path.lexists(own) else ""
        renames.append(f"{apart.name} to {renamed.name}{its_caption}")
    return (f"{names} {'both' if len(owners) == 2 else 'all'} read {expected.name}, so that name alone would give them "
            f"one caption: rename {', '.join(renames)}, then {near.name} to {expected.name}, so each image keeps its "
            "own caption")
