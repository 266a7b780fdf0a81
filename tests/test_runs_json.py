"""`dbtui runs --json`: a script could only read the Rich table; it gets one JSON list on stdout."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from dbtui.cli import main
from engine.runs.folder import RunState
from tests.test_runs_listing import _killed_at_step_33_after_a_checkpoint_at_30, _run


def test_runs_json_lists_each_run_as_an_object_alone_on_stdout(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The table's figures as plain values: a crashed run's step, where it resumes from, its loss; a failed run whose
    loss became NaN (no JSON number) has a null loss, and the output stays valid JSON."""
    killed = _killed_at_step_33_after_a_checkpoint_at_30(tmp_path)
    failed = _run(tmp_path / "runs" / "nan-run", "failed", 3, 40, heartbeat=time.time() - 7200, end="failed")
    failed.write_state(RunState(pid=os.getpid(), status="failed", step=3, total_steps=40, heartbeat=time.time() - 7200,
                                last_loss=float("nan"), started=time.time() - 7300))
    assert main(["runs", "--json", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    runs = {run["name"]: run for run in json.loads(out)}
    crashed = runs[killed.path.name]
    assert {key: crashed[key] for key in ("status", "step", "total_steps", "resumes_from", "last_loss")} == {
        "status": "crashed", "step": 33, "total_steps": 400, "resumes_from": 30, "last_loss": 0.1}
    assert Path(crashed["path"]) == killed.path
    nan = runs["nan-run"]
    assert nan["status"] == "failed" and nan["step"] == 3 and nan["last_loss"] is None and nan["best_step"] is None
    assert 7100 < nan["age_seconds"] < 7300 and nan["updated"].endswith("+00:00")


def test_runs_json_of_a_folder_without_runs_is_an_empty_list_with_the_note_on_stderr(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["runs", "--json", str(tmp_path / "empty")]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out) == [] and "no runs in" in captured.err
