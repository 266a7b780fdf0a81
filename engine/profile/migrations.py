"""Schema migrations: one function per version bump, applied in order on load."""

from __future__ import annotations

import datetime
import json
from typing import Any, Callable

from engine.profile.problems import Problem, ProfileError
from engine.profile.schema import SCHEMA_VERSION

# version N → function that turns a version-N dict into version N+1. Empty while we are at 1.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def migrate(data: dict[str, Any]) -> dict[str, Any]:
    """Bring a profile dict to the current schema version."""
    version = data.get("schema_version", SCHEMA_VERSION)
    if isinstance(version, bool) or not isinstance(version, int):
        raise ProfileError([Problem("schema_version", f"{_as_written(version)} is not a version number: write a whole number without "
                                    f"quotes, e.g. schema_version = {SCHEMA_VERSION}")])
    if version > SCHEMA_VERSION:
        raise ProfileError([Problem("schema_version", f"version {version} was written by a newer dbtui (this one reads 1 to "
                                    f"{SCHEMA_VERSION}); upgrade dbtui")])
    if version < 1:
        raise ProfileError([Problem("schema_version", f"no profile layout has version {version}: the first is 1 and the "
                                    f"current {SCHEMA_VERSION}; write schema_version = {SCHEMA_VERSION}")])
    while version < SCHEMA_VERSION:
        data = MIGRATIONS[version](data)
        version += 1
        data["schema_version"] = version
    return data


def _as_written(value: Any) -> str:
    """``value`` as the TOML that gave it (true, 1979-01-01, "1"), not as Python writes it (True, datetime.date(…))."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (datetime.date, datetime.time)):  # datetime is a date
        return value.isoformat()
    if isinstance(value, dict):
        return "a table"
    return json.dumps(value, ensure_ascii=False)  # a text quoted with its control characters escaped, as TOML writes it
