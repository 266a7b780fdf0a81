"""Two profiles' concepts paired up, concept by concept: what a resume, an export and the machines of a run compare.

Compared by place, a reordered list read as every field of both concepts changed; paired by the folder as written, one
spelt another way (relative or absolute, through a symlink) read as that concept removed and another added.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

from engine.profile.model_source import BUILTIN_PREFIX

Concept = TypeVar("Concept")


def folder_identity(folder: str) -> str:
    """The folder ``folder`` names as the trainer reads it: a relative path from the working folder (a run's profile
    keeps them absolute, from where it was started), symlinks followed, "./x/" and "x" one; a ``builtin:`` name as
    written."""
    return folder if folder.startswith(BUILTIN_PREFIX) else os.path.realpath(os.path.expanduser(folder))


def concept_pairs(before: Sequence[Concept], now: Sequence[Concept], identity: Callable[[Concept], Hashable],
                  likeness: Callable[[Concept, Concept], tuple[int, ...] | None] | None = None,
                  ) -> tuple[dict[int, int], list[int], list[int]]:
    """{index now: index before} of the concepts both have, the indices before of those removed, and the indices now
    of those added. By ``identity`` (what its instance folder is) first; then, where ``likeness`` (of a concept before
    and one now: None where nothing of theirs is alike) is given, those left unmatched most alike, at the same place
    where two are as alike; then one left unmatched at the same place on both sides is the same concept, its folder
    moved or its files changed."""
    free = list(range(len(before)))
    matched: dict[int, int] = {}
    for index, concept in enumerate(now):
        its = identity(concept)
        earlier = next((i for i in free if identity(before[i]) == its), None)
        if earlier is not None:
            matched[index] = earlier
            free.remove(earlier)
    if likeness is not None:
        # Before the place: two concepts listed in another order whose folders both changed were otherwise paired by
        # place, each with the other.
        alike = [(score, index == was, index, was) for index in range(len(now)) if index not in matched for was in free
                 if (score := likeness(before[was], now[index])) is not None]
        for _, _, index, was in sorted(alike, key=lambda pair: (pair[0], pair[1], -pair[2], -pair[3]), reverse=True):
            if index not in matched and was in free:
                matched[index] = was
                free.remove(was)
    for index in range(len(now)):
        if index not in matched and index in free:
            matched[index] = index
            free.remove(index)
    return matched, free, [index for index in range(len(now)) if index not in matched]
