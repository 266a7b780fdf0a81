"""A path as commands and pages show it: without the `.` and `..` detours it was given with (`runs/x/../x`)."""

from __future__ import annotations

import os
from pathlib import Path


def plain_path(path: Path) -> Path:
    """``path`` without detours: relative to the working folder where it was given relative (``../runs/x`` given from
    inside ``runs/``'s parent is ``runs/x``), unless the absolute path is shorter; absolute where it was given so. A path
    not made yet (a new run's folder under ``runs/../runs``) is its nearest existing folder's, plain, and the rest."""
    whole = os.path.abspath(path)  # `a/../b` dropped by its spelling alone
    try:
        if not os.path.samefile(whole, path):  # a link before a `..`: the spelling names another folder
            whole = os.path.realpath(path)
    except OSError:  # missing: said as such by whoever reads it, under the name it was given, beyond its existing part
        if path.name in ("", ".", "..") or path.parent == path:  # past a missing folder a `..` names nothing yet
            return path
        return plain_path(path.parent) / path.name
    if path.is_absolute():
        return Path(whole)
    relative = os.path.relpath(whole)
    return Path(relative if len(relative) <= len(whole) else whole)
