"""Whether a launcher is starting a run in a folder: it holds RUN/.launching (engine.runs.launch_lock) from before it
checks the run's inputs until its trainer's state is written, seconds in which the folder holds no events yet. A
`dbtui stop` asked then was told the folder was "not a run folder", and the stop was lost while the run went on."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


def launch_under_way(path: Path) -> bool:
    """Whether a launcher holds ``path``'s launch lock now. The file is opened, never made: no folder without one gets
    a lock file of this look."""
    try:
        fd = os.open(path / ".launching", os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:  # a disk without locks: no launcher holds one there either
        return False
    finally:
        os.close(fd)  # and with it the shared lock, had it been taken
    return False
