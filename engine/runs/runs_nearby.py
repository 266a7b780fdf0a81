"""Where run folders are near a folder that holds none: where to point `dbtui runs` and the wizard's Attach list."""

from __future__ import annotations

from pathlib import Path

from engine.runs.folder import RunFolderError, holds_a_run


def run_dirs_near(root: Path, depth: int = 3, budget: int = 2000) -> list[Path]:
    """Folders within ``depth`` levels below ``root`` that hold run folders, nearest first: where to point
    `dbtui runs` when its folder has none (the demo's are in dbtui-demo/runs). Hidden folders and the
    insides of runs are skipped, and at most ``budget`` folders are opened, so a home folder answers at once.
    """
    found: list[Path] = []
    level = [Path(root)]
    for _ in range(depth + 1):
        below: list[Path] = []
        for folder in level:
            try:
                children = sorted(c for c in folder.iterdir() if not c.name.startswith(".") and c.is_dir())
            except OSError:
                continue
            budget -= 1
            if budget < 0:
                return found
            runs = {c for c in children if _may_hold_a_run(c)}
            if runs:
                found.append(folder)
            below.extend(c for c in children if c not in runs)
        level = below
    return found


def _may_hold_a_run(path: Path) -> bool:
    """``holds_a_run`` for a hint of where runs may be: a folder it cannot tell is passed over, unsaid."""
    try:
        return holds_a_run(path)
    except RunFolderError:
        return False
