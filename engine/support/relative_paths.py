"""Where a relative path of a profile was looked for, said where it was not found."""

from __future__ import annotations

import os
from pathlib import Path


def where_read(path: str | Path) -> str:
    """" (relative paths are read from the folder dbtui runs in, CWD)" for a relative ``path``, "" for an absolute one:
    a profile's relative paths are read from the working directory, not the profile's folder, and a user looking for
    the path beside the profile was not told so."""
    return "" if os.path.isabs(path) else f" (relative paths are read from the folder dbtui runs in, {Path.cwd()})"
