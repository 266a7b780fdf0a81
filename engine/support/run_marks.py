"""The files by which dbtui knows a run folder: below engine.runs, so that engine.data can pass one over."""

from __future__ import annotations

from pathlib import Path


def holds_run_files(path: Path) -> bool:
    """Whether ``path`` holds a run's events log or state (the launcher writes the state before the trainer starts)."""
    return (path / "events.jsonl").exists() or (path / "state.json").exists()
