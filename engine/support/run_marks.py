"""The files by which dbtui knows a run folder: below engine.runs, so that engine.data can pass one over."""

from __future__ import annotations

from pathlib import Path

EVENTS_FILE = "events.jsonl"  # every event of the run, one JSON object a line: the public format
STATE_FILE = "state.json"  # its pid, status and step, rewritten as it runs


def holds_run_files(path: Path) -> bool:
    """Whether ``path`` holds a run's events log or state (the launcher writes the state before the trainer starts)."""
    return (path / EVENTS_FILE).exists() or (path / STATE_FILE).exists()
