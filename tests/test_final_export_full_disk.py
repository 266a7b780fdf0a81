"""The final export at a run's end meeting a full disk: said with the folder it was writing and what to do."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from engine.runs.file_errors import RunFilesError
from engine.runs.sinks import read_events


def test_a_full_disk_in_the_final_export_names_the_outputs_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write that fills the disk as its file closes says no file: the run failed with "the disk is full (or the quota
    used up) writing a file of the run", leaving the user to guess which disk, and what was lost."""
    from engine.runs.in_process import train
    from engine.training import outputs
    from tests.training_helpers import tiny_profile

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(outputs, "save_pipeline", full)
    run = tmp_path / "run"
    with pytest.raises(RunFilesError) as said:
        train(tiny_profile(tmp_path, training={"max_train_steps": 1}, saving={"export": ["diffusers"]}), run)
    assert str(said.value).startswith(f"the disk is full (or the quota used up) writing '{run / 'outputs'}'"), said.value
    assert f"free some space (`df -h {run / 'outputs'}`)" in said.value.advice, said.value.advice
    failed = [event for event in read_events(run / "events.jsonl") if event.kind == "run_failed"]
    assert len(failed) == 1 and str(run / "outputs") in failed[0].reason and "bug" not in failed[0].advice
