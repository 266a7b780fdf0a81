"""Reading the small JSON records dbtui and diffusers keep beside files (manifests, configs, origin records)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def read_json_object(path: Path | str) -> dict[str, Any]:
    """The JSON object in ``path``; {} when the file is missing, unreadable, damaged or holds no object, so that a
    caller treats it as never written (each says what that means for its record)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def is_number(value: Any) -> bool:
    """Whether a value read from JSON is a number a float holds: true and false are not (bool is int's subclass in
    Python), nor a whole number past a float's range (a damaged line's), on which float arithmetic, formatting and
    math.isfinite raise OverflowError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        float(value)
    except OverflowError:
        return False
    return True
