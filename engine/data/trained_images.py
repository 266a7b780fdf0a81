"""Each concept's instance images as a run trains them, by file name and size: a checkpoint records them, so that a
resume can say which were added, removed or replaced since. The profile's folders may change between a stop and a
resume (they move), but what they hold trains the steps to come: a photo added in between made another run of it
without a word, and a resume that said nothing read as exact."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

SHOWN = 3  # file names shown per kind of change

ImageRecord = list[dict[str, int]]  # per concept index: {file name: size in bytes}


def image_record(examples: Iterable[Any], concepts: int) -> ImageRecord:
    """``{name: size}`` of the instance images of each of ``concepts`` concepts among ``examples``; -1 where a file
    cannot be read now (it is then told as replaced if it comes back)."""
    record: ImageRecord = [{} for _ in range(concepts)]
    for example in examples:
        if not example.is_class:
            try:
                size = example.path.stat().st_size
            except OSError:
                size = -1
            record[example.concept][example.path.name] = size
    return record


def _named(names: list[str]) -> str:
    more = len(names) - SHOWN
    return ", ".join(repr(name) for name in names[:SHOWN]) + (f" and {more} more" if more > 0 else "")


def said_image_changes(before: Any, now: ImageRecord, pairs: dict[int, int], folders: list[str]) -> list[str]:
    """``concepts[N] (instance_dir '…'): 'a.png' added; 'b.png' removed`` for each concept now (index N, its
    ``folders[N]``) paired with one of the checkpoint's (``pairs``: now → then) whose images differ. ``before``: the
    checkpoint's record, nothing said where it has none (a checkpoint of an earlier version)."""
    if not isinstance(before, list):
        return []
    said: list[str] = []
    for index, earlier in sorted(pairs.items()):
        if earlier >= len(before) or index >= len(now) or not isinstance(before[earlier], dict):
            continue
        was, is_now = before[earlier], now[index]
        parts = [(sorted(is_now.keys() - was.keys()), "added"), (sorted(was.keys() - is_now.keys()), "removed"),
                 (sorted(name for name in was.keys() & is_now.keys() if was[name] != is_now[name]), "replaced")]
        changes = "; ".join(f"{_named(names)} {what}" for names, what in parts if names)
        if changes:
            said.append(f"concepts[{index}] (instance_dir {folders[index]!r}): {changes}")
    return said
