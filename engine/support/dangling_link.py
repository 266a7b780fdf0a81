"""Where a link that leads to no file leads: each link of the chain, to the missing end or round a loop."""

from __future__ import annotations

import errno
import os
from pathlib import Path

# As the kernel: past 40 links a path is refused (ELOOP).
_MOST_LINKS = 40


def dangling_link(path: Path) -> str:
    """"a link to B, itself a link to C, which is not there (moved or deleted)" for a link ``path`` that leads to no
    file, each target as a path from here (a relative target is read from its link's folder); a chain that comes back
    to a link it passed is said to go round in a loop. Only the first link was named: the end is what to look for."""
    targets: list[str] = []
    seen = {os.path.normpath(path)}
    link = str(path)
    while os.path.islink(link) and len(targets) < _MOST_LINKS:
        link = os.path.normpath(os.path.join(os.path.dirname(link), os.readlink(link)))
        targets.append(link)
        if link in seen:
            return f"{_chain(targets)}, round in a loop"
        seen.add(link)
    try:
        os.lstat(link)
    except OSError as error:
        if error.errno == errno.ELOOP:  # nothing is missing: a folder on its path is a link round a loop
            return f"{_chain(targets)}, whose path runs through a link round a loop"
    return f"{_chain(targets)}, which is not there (moved or deleted)"


def _chain(targets: list[str]) -> str:
    return "a link to " + ", itself a link to ".join(targets)
