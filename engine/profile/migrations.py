"""Schema migrations: one function per version bump, applied in order on load."""

from __future__ import annotations

from typing import Any, Callable

from engine.profile.problems import Problem, ProfileError
from engine.profile.schema import SCHEMA_VERSION

# version N → function that turns a version-N dict into version N+1. Empty while we are at 1.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def migrate(data: dict[str, Any]) -> dict[str, Any]:
    """Bring a profile dict to the current schema version."""
    version = data.get("schema_version", SCHEMA_VERSION)
    if not isinstance(version, int) or version > SCHEMA_VERSION or version < 1:
        raise ProfileError(
            [Problem("schema_version", f"version {version!r} is not known to this dbtui (it reads 1 to {SCHEMA_VERSION}); upgrade dbtui")]
        )
    while version < SCHEMA_VERSION:
        data = MIGRATIONS[version](data)
        version += 1
        data["schema_version"] = version
    return data
