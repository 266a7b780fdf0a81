"""Image files whose header cannot be read, found before a run starts: the trainer reads every header before caching,
after its model has loaded, and stops on the first folder holding one (a text file named .jpg, a zero-byte .png)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.builtin import is_builtin
from engine.data.decoding import cut_short, damaged_said
from engine.data.images import list_images, unreadable_headers
from engine.profile.problems import Problem
from engine.profile.schema import Profile


@dataclass(frozen=True)
class DamagedImagesProblem(Problem):
    """A folder's image files a run cannot read, said as the trainer says it. ``cut_short``: how many of them have a
    header that reads but pixels that do not decode, which validate (reading headers alone) does not find."""

    cut_short: int = 0

def header_problems(profile: Profile, progress: Callable[[int, int], None] | None = None, *,
                    decode: bool = False, decode_progress: Callable[[int, int], None] | None = None) -> list[Problem]:
    """The images the trainer would read (each concept's, and the class images of the user's own it takes) whose header
    cannot be read, one problem a folder, said as the trainer says it. Folders that are not here are passed over: the
    folder checks say so. ``progress``: told (done, total) after each header. ``decode``: where a header cannot be read,
    the other images are decoded too, and those cut short named with them: a run refused then names every damaged one,
    not one kind a try; ``decode_progress`` is told (done, total) after each."""
    folders: list[tuple[str, list[Path]]] = []
    for index, concept in enumerate(profile.concepts):
        folders.append((f"concepts.{index}.instance_dir", _images(concept.instance_dir)))
        if profile.prior.enabled and concept.class_dir:
            folders.append((f"concepts.{index}.class_dir", _images(concept.class_dir)[:concept.num_class_images]))
    every = [path for _, paths in folders for path in paths]
    bad = set(unreadable_headers(every, progress))
    cut = set(cut_short([path for path in every if path not in bad], decode_progress) if decode and bad else [])
    return [DamagedImagesProblem(key, damaged_said([p for p in paths if p in bad], [p for p in paths if p in cut]),
                                 cut_short=len(cut.intersection(paths)))
            for key, paths in folders if bad.intersection(paths) or cut.intersection(paths)]


def _images(folder: str) -> list[Path]:
    if is_builtin(folder):
        return []
    try:
        return list_images(Path(folder)) if Path(folder).is_dir() else []
    except OSError:  # a folder this user may not read, or a name too long to look up: the folder checks say so
        return []
