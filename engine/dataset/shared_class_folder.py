"""A class folder that concepts of different class prompts share, holding pictures of the user's own: the run takes
a folder's own pictures first for each concept (engine.training.class_images), so a disc photo put there for "photo of
a disc" is a class image of "photo of a plate" too. Generated images are kept apart per prompt, so a shared folder of
them only is fine, as the README says; a warning, not an error, since a shared regularisation set may be meant."""

from __future__ import annotations

import os

from engine.builtin import resolve_dir
from engine.data.images import DataError, list_images
from engine.errors import DbtuiError
from engine.profile.concept_warnings import same_text
from engine.profile.problems import Problem
from engine.profile.schema import Profile, concept_label


def shared_class_folder_problems(profile: Profile) -> list[Problem]:
    """A concept whose class folder an earlier concept of another class prompt uses, where it holds own pictures."""
    if not profile.prior.enabled:
        return []
    problems: list[Problem] = []
    first_by_folder: dict[str, int] = {}
    for index, concept in enumerate(profile.concepts):
        if not concept.class_dir:
            continue
        try:
            # A built-in folder's pictures (builtin:demo-class's discs) are taken first as any folder's are.
            folder = resolve_dir(concept.class_dir)
        except DbtuiError:  # a built-in name that names nothing: said by builtin_name_problems
            continue
        earlier = first_by_folder.setdefault(os.path.realpath(folder), index)
        owner = profile.concepts[earlier]
        if earlier == index or same_text(owner.class_prompt or "") == same_text(concept.class_prompt or ""):
            continue
        try:
            own = len(list_images(folder))
        except (DataError, OSError):  # not here, or unreadable: what this machine lacks is said elsewhere
            continue
        if own:
            problems.append(Problem(
                f"concepts.{index}.class_dir",
                f"is the class folder of {concept_label(earlier)} too, and its {own} picture(s) of your own serve as "
                f"class images of both class prompts ('{owner.class_prompt}' and '{concept.class_prompt}'): give each "
                "class prompt its own class folder, or keep only dbtui's generated images in a shared one"))
    return problems
