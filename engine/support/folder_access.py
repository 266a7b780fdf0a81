"""The command that lets this user into a folder, written so that it works wherever it is pasted."""

from __future__ import annotations

import os
import shlex
from pathlib import Path


def access_fix(folder: Path | str) -> str:
    """Advice for a folder this user may not list or enter: `chmod u+rx` of its absolute path, quoted for the shell (a
    profile's relative path is read from the folder dbtui runs in, not always the one the command is pasted in), or of
    the folder above it that cannot be entered, where one is the cause (a chmod of the folder itself would fail too)."""
    path = Path(os.path.abspath(folder))
    blocked = next((above for above in reversed(path.parents) if not os.access(above, os.X_OK)), path)
    command = f"`chmod u+rx {shlex.quote(str(blocked))}`"
    if blocked != path:
        return f"the folder above it, {blocked}, cannot be entered: give yourself access with {command}"
    return f"give yourself access with {command} (read to list it, execute to open its files)"
