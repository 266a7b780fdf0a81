"""A plain resume goes back to the latest complete checkpoint, past a later one whose manifest is missing or damaged."""

from __future__ import annotations

from pathlib import Path

from engine.runs.resume_changes import resume_warnings
from tests.runs_helpers import run_with_checkpoints


def test_a_resume_past_a_later_incomplete_checkpoint_says_so(tmp_path: Path) -> None:
    """`dbtui runs` said 239/300 and `dbtui resume` trained again from step 150 without a word of step 239's damaged
    manifest (export warned of it): the user learnt of the lost steps only from "resumed at step 150"."""
    folder, profile = run_with_checkpoints(tmp_path, [150])
    (folder.checkpoints / "step-00000239").mkdir()
    (folder.checkpoints / "step-00000239" / "manifest.json").write_text("garbage")
    manifest = {"step": 150, "num_processes": 1}
    [warning] = resume_warnings(manifest, profile, 1, 300, folder=folder)
    assert warning.message.startswith("resuming from step 150, the latest complete checkpoint: ")
    assert "step-00000239 (step 239) is incomplete" in warning.message
    assert "its steps 151-239 are lost" in warning.message
    assert "cannot be resumed from" in warning.advice


def test_a_resume_of_the_latest_checkpoint_says_nothing_of_earlier_folders(tmp_path: Path) -> None:
    folder, profile = run_with_checkpoints(tmp_path, [150])
    (folder.checkpoints / "step-00000100").mkdir()  # an older save cut short: no step is trained again for it
    assert resume_warnings({"step": 150, "num_processes": 1}, profile, 1, 300, folder=folder) == []


def test_a_resume_from_an_earlier_checkpoint_is_not_called_the_latest_complete(tmp_path: Path) -> None:
    """`dbtui resume RUN --from 100` of a run with step 150 complete and 239 damaged said "resuming from step 100, the
    latest complete checkpoint", and that steps 101-239 were lost to the damage: the user chose 100 over 150."""
    folder, profile = run_with_checkpoints(tmp_path, [100, 150])
    (folder.checkpoints / "step-00000239").mkdir()
    assert resume_warnings({"step": 100, "num_processes": 1}, profile, 1, 300, folder=folder) == []
    [warning] = resume_warnings({"step": 150, "num_processes": 1}, profile, 1, 300, folder=folder)
    assert "its steps 151-239 are lost" in warning.message
