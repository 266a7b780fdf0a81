"""A run's stored profile read back: its paths holding a control character taken as they are only where they are what
the run recorded (engine.profile.stored_paths), so that a hand edit of RUN/profile.toml is still checked."""

from __future__ import annotations

from pathlib import Path

from engine.profile import Profile, ProfileError, load_run_profile, profile_data, validate_data
from engine.profile.stored_paths import control_texts
from engine.runs.earlier_attempt import earlier_logs
from engine.runs.folder import RunFolder
from engine.runs.last_events import run_starts


def run_profile(folder: RunFolder, path: Path | None = None) -> Profile:
    """RUN/profile.toml of the run in ``folder`` (or ``path``: another machine's, RUN/outputs/profile.toml), read as
    ``load_run_profile`` reads it against this run's record; raises ProfileError."""
    return load_run_profile(path or folder.profile, lambda: recorded_paths(folder))


def recorded_paths(folder: RunFolder) -> dict[str, str]:
    """The texts holding a control character (``control_texts``) of the profile the run last started with, written as
    RUN/profile.toml holds them (``profile_data``: each $ doubled); {} where no start is recorded or readable.

    The record is the last run_started event: the trainer writes it once its models are loaded, from the profile it
    read from RUN/profile.toml. A checkpoint's manifest holds that profile too, but only once a checkpoint was saved.
    A resume with no checkpoint sets the log aside (engine.runs.earlier_attempt) before its trainer reads the profile:
    the log set aside last is read where the run's own holds no start."""
    for log in (folder.events, *earlier_logs(folder)):
        try:
            started = _last_start(log)
        except (OSError, ProfileError):
            return {}
        if started is not None:
            return control_texts(profile_data(started))
    return {}


def _last_start(log: Path) -> Profile | None:
    """The profile of the last run_started event in ``log``; None where it holds none. Raises OSError, ProfileError."""
    if not log.exists():
        return None
    profile = next((start["profile"] for start in run_starts(log) if isinstance(start.get("profile"), dict)), None)
    return None if profile is None else validate_data(profile, dumped=True)
