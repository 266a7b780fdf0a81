"""A path whose ``~name`` names no user here, said alike by the profile and the command line."""

from __future__ import annotations


def unknown_user(expanded: str) -> str | None:
    """What is wrong with a path still starting with ``~`` once expanded (``~nosuchuser/x``), in words a profile key or
    a command-line argument goes before; None for any other path. pathlib's expanduser raises on such a path."""
    if expanded.startswith("~"):
        return f"starts with {expanded.split('/')[0]!r}, which names no user here; write the path out"
    return None
