"""Whether a launcher is starting a run in a folder: it holds RUN/.launching (engine.runs.launch_lock) from before it
checks the run's inputs until its trainer's state is written, seconds in which the folder holds no events yet. A
`dbtui stop` asked then was told the folder was "not a run folder", and the stop was lost while the run went on."""

from __future__ import annotations

from pathlib import Path

from engine.runs.held_file import held


def launch_under_way(path: Path) -> bool:
    """Whether a launcher holds ``path``'s launch lock now (a lock file is read, never made)."""
    return held(path / ".launching") is True
