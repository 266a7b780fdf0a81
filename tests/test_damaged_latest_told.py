"""A run whose latest checkpoint is damaged (a copy cut short, a disk error): `dbtui resume` refuses it, so `dbtui
runs`, `attach`, `stop` and the dashboard must not tell the user to resume from it."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from dbtui.cli import main
from engine.runs.folder import RunFolder, RunState
from tests.runs_helpers import run_with_checkpoints


def _crashed_with_step_30_cut_short(tmp_path: Path) -> RunFolder:
    folder, _ = run_with_checkpoints(tmp_path, [10, 30])
    weights = folder.checkpoints / "step-00000030" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:40])  # as `cp -a` or rsync leaves a file it was stopped in
    folder.write_state(RunState(pid=os.getpid(), status="running", step=33, total_steps=400, heartbeat=time.time(),
                                last_loss=0.1, started=time.time() - 60))  # a process that is no trainer: killed
    assert folder.status() == "crashed"
    return folder


def test_a_damaged_latest_checkpoint_is_not_named_as_the_one_to_resume_from(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """`dbtui attach` and `dbtui stop` said "Resume from its latest checkpoint (step 30) with: dbtui resume RUN", and
    `dbtui runs` "33/400 · resumes from 30", where that resume is refused as damaged: the hint now names the damage
    and the `--from` that works, and the listing names no step its resume would refuse."""
    from dbtui.format import resume_hint
    from engine.runs.resume_point import checkpoint_named

    folder = _crashed_with_step_30_cut_short(tmp_path)
    hint = resume_hint(folder)
    assert hint.startswith("Its latest checkpoint (step 30) is damaged: model.safetensors has 40 bytes where"), hint
    assert hint.endswith(f"resume from the newest whole one with: dbtui resume {folder.path} --from 10"), hint
    assert checkpoint_named(folder, "10") == str(folder.checkpoints / "step-00000010")  # the command it gives works
    assert main(["stop", str(folder.path)]) == 2
    assert "is damaged" in capsys.readouterr().err
    monkeypatch.setenv("COLUMNS", "300")
    assert main(["runs", str(tmp_path / "runs"), "--json"]) == 0
    out = capsys.readouterr().out
    assert '"resumes_from": null' in out and '"status": "crashed"' in out, out
    assert main(["runs", str(tmp_path / "runs")]) == 0
    assert "resumes from 30" not in capsys.readouterr().out


def test_a_damaged_only_checkpoint_says_the_run_starts_again(tmp_path: Path) -> None:
    from dbtui.format import resume_hint

    folder = _crashed_with_step_30_cut_short(tmp_path)
    (folder.checkpoints / "step-00000010" / "manifest.json").unlink()
    assert resume_hint(folder).endswith("the run keeps no whole checkpoint, so it can only start again under a new name")


def test_the_checkpoint_named_is_a_whole_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """With steps 20 and 30 both cut short (a copy of the run folder stopped part way), the hint and `dbtui resume`
    named `--from 20`, which is refused as damaged too, listing step 30 among the others: the newest whole one is 10."""
    from dbtui.format import resume_hint

    folder, _ = run_with_checkpoints(tmp_path, [10, 20, 30])
    for step in (20, 30):
        weights = folder.checkpoints / f"step-{step:08d}" / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[:40])
    folder.write_state(RunState(pid=os.getpid(), status="running", step=33, total_steps=400, heartbeat=time.time(),
                                last_loss=0.1, started=time.time() - 60))
    assert resume_hint(folder).endswith(f"resume from the newest whole one with: dbtui resume {folder.path} --from 10")
    assert main(["resume", str(folder.path)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"--from {folder.checkpoints / 'step-00000010'}" in err and "step-00000020" not in err, err
    (folder.checkpoints / "step-00000010" / "model.safetensors").write_bytes(b"")
    assert resume_hint(folder).endswith("the run keeps no whole checkpoint, so it can only start again under a new name")


def test_a_refusal_that_lists_the_kept_checkpoints_marks_the_damaged_ones(tmp_path: Path, capsys) -> None:
    """`resume --from` a step not kept, or a damaged one, listed a cut-short checkpoint among "the run's (other) kept
    checkpoints" as one to resume from instead, to be refused in turn."""
    folder, _ = run_with_checkpoints(tmp_path, [200, 253, 300])
    for step in (200, 253):
        (folder.checkpoints / f"step-{step:08d}" / "model.safetensors").write_bytes(b"cut")
    for given in ("16", "200"):
        assert main(["resume", str(folder.path), "--from", given]) == 2
        err = capsys.readouterr().err
        assert f"{folder.checkpoints / 'step-00000253'} (damaged: model.safetensors has 3 bytes where" in err
        assert err.rstrip().endswith(str(folder.checkpoints / "step-00000300"))
