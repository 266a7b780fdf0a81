"""Checks of a profile against the file system: folders that are missing, captions not written.

Kept apart from validation: a profile stays valid on a machine where its data is not yet copied;
these come back as warnings.
"""

from __future__ import annotations

from pathlib import Path

from engine.builtin import is_builtin
from engine.data.images import list_images
from engine.profile.problems import Problem
from engine.profile.schema import Profile


def path_problems(profile: Profile) -> list[Problem]:
    """What is missing on disk for this profile to train."""
    problems: list[Problem] = []
    for index, concept in enumerate(profile.concepts):
        key = f"concepts.{index}"
        if is_builtin(concept.instance_dir):
            continue
        folder = Path(concept.instance_dir)
        if not folder.is_dir():
            problems.append(Problem(f"{key}.instance_dir", f"folder '{folder}' does not exist"))
            continue
        images = list_images(folder)
        if not images:
            problems.append(Problem(f"{key}.instance_dir", f"no images in '{folder}'"))
        if concept.caption_mode == "caption_file":
            missing = [p.name for p in images if not p.with_suffix(profile.dataset.caption_extension).exists()]
            if missing:
                problems.append(Problem(f"{key}.caption_mode", f"{len(missing)} image(s) have no caption file, e.g. {missing[0]}; "
                                        "write them or run `dbtui dataset caption`"))
    return problems
