"""The files by which dbtui knows a run folder: below engine.runs, so that engine.data can pass one over."""

from __future__ import annotations

from pathlib import Path

EVENTS_FILE = "events.jsonl"  # every event of the run, one JSON object a line: the public format
STATE_FILE = "state.json"  # its pid, status and step, rewritten as it runs


def holds_run_files(path: Path) -> bool:
    """Whether ``path`` holds a run's events log or state (the launcher writes the state before the trainer starts)."""
    return (path / EVENTS_FILE).exists() or (path / STATE_FILE).exists()


# RUN/profile-machine-N.toml: the profile that machine N (not 0) trains, written beside RUN/profile.toml by the launcher
# and known by its name to the run folder (not the user's file), the conversion holder and `dbtui runs`; the launcher
# writes that machine's trainer log as RUN/logs/trainer-machine-N.log, where `dbtui runs` looks for its pid.
MACHINE_PROFILE_PREFIX = "profile-machine-"
MACHINE_PROFILE_GLOB = f"{MACHINE_PROFILE_PREFIX}*.toml"


def machine_profile_name(rank: int) -> str:
    """The file name of the profile machine ``rank`` (not 0) trains."""
    return f"{MACHINE_PROFILE_PREFIX}{rank}.toml"


def machine_log_name(rank: int | str) -> str:
    """The file name of the trainer log of machine ``rank`` (not 0), in RUN/logs/."""
    return f"trainer-machine-{rank}.log"


def profile_machine(name: str) -> str | None:
    """The machine number that the file name ``name`` is the profile of (``machine_profile_name``); None for any
    other name."""
    if name.startswith(MACHINE_PROFILE_PREFIX) and name.endswith(".toml"):
        return name.removeprefix(MACHINE_PROFILE_PREFIX).removesuffix(".toml")
    return None
