"""A path whose ``~name`` names no user here, said alike by the profile, the command line and the wizard."""

from __future__ import annotations

import os


def unknown_user(expanded: str) -> str | None:
    """What is wrong with a path still starting with ``~`` once expanded (``~nosuchuser/x``), in words a profile key or
    a path goes before; None for any other path. pathlib's expanduser raises on such a path."""
    if expanded.startswith("~"):
        return f"starts with {expanded.split('/')[0]!r}, which names no user here; write the path out"
    return None


def typed_unknown_user(typed: str) -> str | None:
    """``unknown_user`` of a path as typed, on the command line or in the wizard; None where a file so named is there,
    which a shell too passes on as it is ('~old.toml')."""
    expanded = os.path.expanduser(typed)
    return None if os.path.lexists(expanded) else unknown_user(expanded)
