"""A launch refused after an earlier attempt's log and pictures were set aside puts them back: the run folder was left
without events.jsonl, so `dbtui runs`, `attach`, `report` and the wizard no longer saw the run, or saw it crashed."""

from __future__ import annotations

import errno
import json
import subprocess
from pathlib import Path

import pytest

from engine.profile import save_profile
from engine.runs import launcher
from engine.runs.folder import RunFolder, RunFolderError, RunState
from tests.training_helpers import tiny_profile

FAILED = {"event": "run_failed", "time": 1.0, "reason": "the disk is full", "advice": "free some space", "step": 24}


def _failed_attempt(tmp_path: Path) -> tuple[RunFolder, object, dict[str, bytes]]:
    """A run that failed before its first checkpoint, with previews and a scored round; and its files' contents."""
    profile = tiny_profile(tmp_path)
    folder = RunFolder(tmp_path / "runs" / profile.name).create()
    save_profile(profile, folder.profile)
    folder.events.write_text(json.dumps(FAILED) + "\n", encoding="utf-8")
    folder.write_state(RunState(pid=0, status="failed", step=24, total_steps=6, last_loss=None, started=1.0, heartbeat=1.0))
    for picture in ("samples/step-000010/grid.png", "evaluation/step-000000/prompt00_00.png"):
        (folder.path / picture).parent.mkdir(parents=True, exist_ok=True)
        (folder.path / picture).write_bytes(b"png")
    return folder, profile, _contents(folder.path)


def _contents(path: Path) -> dict[str, bytes]:
    """The run's files, less what the launch adds (this launch's profile, an empty trainer log opened to append)."""
    return {str(file.relative_to(path)): file.read_bytes() for file in sorted(path.rglob("*"))
            if file.is_file() and file.name != "profile.toml" and file.parent.name != "logs"}


def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("fails", ["profile", "samples", "control", "spawn"])
def test_a_resume_refused_after_setting_the_earlier_attempt_aside_puts_it_back(fails: str, tmp_path: Path,
                                                                               monkeypatch) -> None:
    folder, profile, before = _failed_attempt(tmp_path)
    if fails == "profile":  # the disk that ended the run is still full
        write_text = Path.write_text
        monkeypatch.setattr(Path, "write_text",
                            lambda self, *a, **k: _no_space() if self.name.endswith(".tmp") else write_text(self, *a, **k))
    elif fails == "samples":  # the new run's empty previews folder: a full disk has no block for it
        mkdir = Path.mkdir
        monkeypatch.setattr(Path, "mkdir", lambda self, *a, **k: _no_space() if self == folder.samples and not
                            self.exists() else mkdir(self, *a, **k))
    elif fails == "control":
        monkeypatch.setattr(launcher, "drop_requests", _no_space)
    else:
        monkeypatch.setattr(subprocess, "Popen", _no_space)
    with pytest.raises((RunFolderError, OSError)) as refused:
        launcher.start_run(profile, resume="latest")
    if fails != "spawn":
        assert "the disk is full" in str(refused.value)
    assert _contents(folder.path) == before
    assert sorted(path.name for path in folder.path.iterdir() if "." in path.name) == ["events.jsonl", "profile.toml",
                                                                                     "state.json"]
