"""A path as commands and pages show it: without the `.` and `..` detours it was given with (`runs/x/../x`)."""

from __future__ import annotations

import os
from pathlib import Path


def plain_path(path: Path) -> Path:
    """``path`` without detours: relative to the working folder where it was given relative (``../runs/x`` given from
    inside ``runs/``'s parent is ``runs/x``), unless the absolute path is shorter; absolute where it was given so. A path
    not made yet (a new run's folder under ``runs/../runs``) is its nearest existing folder's, plain, and the rest."""
    made, rest = _made_part(path)
    if rest:
        return _plain_beyond(path, made, rest)
    whole = os.path.abspath(path)  # `a/../b` dropped by its spelling alone
    try:
        if not os.path.samefile(whole, path):  # a link before a `..`: the spelling names another folder
            whole = os.path.realpath(path)
    except OSError:  # a dangling link, or a folder not to be read: said so by whoever reads it, under its given name
        return path
    if path.is_absolute():
        return Path(whole)
    relative = os.path.relpath(whole)
    return Path(relative if len(relative) <= len(whole) else whole)


def _made_part(path: Path) -> tuple[Path, list[str]]:
    """The longest leading part of ``path`` that is on disk (``.`` where none of a relative one is), and the names after
    it. A dangling link is on disk: a folder cannot be made there."""
    parts = path.parts
    for cut in range(len(parts), 0, -1):
        if os.path.lexists(Path(*parts[:cut])):
            return Path(*parts[:cut]), list(parts[cut:])
    return Path(), list(parts)


def _plain_beyond(path: Path, made: Path, rest: list[str]) -> Path:
    """``path``, whose ``rest`` is not made yet past its ``made`` part. The missing folders are made as plain folders
    (the launch's mkdir), so a `..` after one of them undoes it, and a new run's folder under `runs/../runs` is
    `runs/...` whether `runs/` is there yet or not. Past a file or a dangling link nothing can be made: kept as given,
    for whoever makes it to say why."""
    if not os.path.isdir(made):
        return path
    tail = Path(os.path.normpath(Path(*rest)))
    climbs = 0
    while climbs < len(tail.parts) and tail.parts[climbs] == "..":
        climbs += 1  # above the made part: its parents, which are there, are made plain with their links
    names = tail.parts[climbs:]
    if climbs:  # the names may lead back into folders that are there (from inside pp/: `../pp/z` is `z`)
        return plain_path(made.joinpath(*[".."] * climbs, *names))
    return plain_path(made).joinpath(*names)
