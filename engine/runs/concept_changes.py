"""A resume's concepts against its checkpoint's, matched by instance folder: compared by place, a reordered list said
every field of both concepts changed, and a removed concept each of its fields "→ unset", where one line each says
what happened."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Optional

from engine.profile.changes import changed_settings, said_changes, shown_value
from engine.profile.concept_pairs import concept_pairs, folder_identity
from engine.profile.schema import ConceptSection, Profile

_Change = tuple[str, Any, Any]
# How alike a concept before (its index) and one now (its index) are, None where nothing of theirs is (concept_pairs).
Likeness = Optional[Callable[[int, int], Optional[tuple[int, ...]]]]
# {index now: index before} of the concepts paired, the indices before of those removed, those now of those added.
Pairs = tuple[dict[int, int], list[int], list[int]]


def concept_pairs_of(before: list[ConceptSection], now: list[ConceptSection], likeness: Likeness = None) -> Pairs:
    """Paired by the folder each instance folder is, however spelt (a symlink, relative or absolute); then, of those
    left, the most alike by ``likeness`` (the images they share: a list reordered whose folders moved too was paired
    by place, each concept with the other); then by place."""
    alike = (lambda was, is_now: likeness(was[0], is_now[0])) if likeness else None
    return concept_pairs(list(enumerate(before)), list(enumerate(now)),
                         lambda item: folder_identity(item[1].instance_dir), alike)


def _field_changes(was: ConceptSection, now: ConceptSection, index: int, kept: Callable[[str], bool]) -> list[_Change]:
    old, new = was.model_dump(mode="json"), now.model_dump(mode="json")
    return [(f"concepts[{index}].{name}", old[name], new[name]) for name in new
            if old[name] != new[name] and kept(f"concepts[{index}].{name}")]


def said_concept_changes(before: list[ConceptSection], now: list[ConceptSection], kept: Callable[[str], bool],
                         pairs: Pairs | None = None) -> list[str]:
    """What changed of the concepts, for "changed since step N: …": a concept in its place has a ``key: before → now``
    part for each field ``kept`` keeps (those a resume may change left out), one moved, removed or added one part.
    ``pairs``: ``concept_pairs_of``'s, by their folders alone where none are given."""
    matched, removed, added = pairs or concept_pairs_of(before, now)
    said: list[str] = []
    for index, earlier in sorted(matched.items()):
        changes = _field_changes(before[earlier], now[index], index, kept)
        if earlier == index:
            said += [said_changes([change]) for change in changes]
            continue
        its = ", and its " + "; ".join(f"{key.split('.', 1)[1]}: {shown_value(was)} → {shown_value(is_now)}"
                                       for key, was, is_now in changes) if changes else ""
        said.append(f"concepts[{earlier}] (instance_dir {shown_value(now[index].instance_dir)}) is now concepts[{index}]{its}")
    said += [f"concepts[{index}] (instance_dir {shown_value(before[index].instance_dir)}): removed" for index in removed]
    said += [f"concepts[{index}] (instance_dir {shown_value(now[index].instance_dir)}): added" for index in added]
    return said


def said_profile_changes(before: Profile, now: Profile, kept: Callable[[str], bool], pairs: Pairs | None = None) -> list[str]:
    """``key: before → now`` of each setting ``kept`` keeps that differs; the concepts' changes where the first concept's
    would stand, paired as ``said_concept_changes`` pairs them (one part a concept reordered, removed or added)."""
    said: list[str] = []
    concepts = said_concept_changes(before.concepts, now.concepts, kept, pairs)
    for change in changed_settings(before, now):
        if change[0].startswith("concepts["):
            said += concepts
            concepts = []
        elif kept(change[0]):
            said.append(said_changes([change]))
    return said + concepts
