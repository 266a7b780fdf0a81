"""The command that lets this user into a folder, or read a file, written so that it works wherever it is pasted."""

from __future__ import annotations

import os
import pwd
import shlex
from pathlib import Path


def access_fix(folder: Path | str) -> str:
    """Advice for a folder this user may not list or enter: `chmod u+rx` of its absolute path, quoted for the shell (a
    profile's relative path is read from the folder dbtui runs in, not always the one the command is pasted in), or of
    the folder above it that cannot be entered, where one is the cause (a chmod of the folder itself would fail too).
    Only a folder's owner may chmod it: another user's folder is said to be theirs, to be opened by them or with sudo."""
    path = Path(os.path.abspath(folder))
    blocked = next((above for above in reversed(path.parents) if not os.access(above, os.X_OK)), path)
    owner = owner_if_not_you(blocked)
    if owner is None:
        fix = f"give yourself access with `chmod u+rx {shlex.quote(str(blocked))}`"
    else:
        fix = (f"it belongs to {owner}, so only they can change that: ask them to let you in, or use "
               f"`sudo chmod o+rx {shlex.quote(str(blocked))}`")
    if blocked != path:
        return f"the folder above it, {blocked}, cannot be entered: {fix}"
    return f"{fix} (read to list it, execute to open its files)"


def read_fix(file: Path | str) -> str:
    """Advice for a file this user may not read (which no copy of it mends: the copy cannot read it either): `chmod u+r`
    of its absolute path, quoted for the shell; another user's file is said to be theirs, as a folder is above."""
    path = Path(os.path.abspath(file))
    owner = owner_if_not_you(path)
    if owner is None:
        return f"give yourself read access with `chmod u+r {shlex.quote(str(path))}`"
    return (f"it belongs to {owner}, so only they can change that: ask them to let you read it, or use "
            f"`sudo chmod o+r {shlex.quote(str(path))}`")


def owner_if_not_you(folder: Path) -> str | None:
    """The name of ``folder``'s (or a file's) owner where that is not this user (their user id where it has no name); None where it is
    this user's, or where it cannot be told (then the chmod is the advice)."""
    try:
        uid = folder.stat().st_uid
    except OSError:
        return None
    if uid == os.geteuid():
        return None
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:  # a user id with no account here (a container's, a mounted disk's)
        return f"user id {uid}"
