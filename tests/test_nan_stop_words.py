"""What a run stopped by a NaN loss says it leaves: the wizard and `dbtui attach` show it as it is."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from engine.runs.folder import RunFolder
from engine.runs.supervisor import Supervisor
from engine.training.watchdogs import NonFiniteLossError
from tests.runs_helpers import run_with_checkpoints


def test_a_nan_before_the_first_checkpoint_does_not_promise_one(tmp_path: Path) -> None:
    """A run whose loss became NaN at step 3, before any checkpoint, said 'the last good checkpoint is kept': the
    user looked for a checkpoint to resume from that was never saved."""
    supervisor = Supervisor(RunFolder(tmp_path / "run").create())
    with pytest.raises(NonFiniteLossError) as caught:
        supervisor.on_step(SimpleNamespace(last_loss=float("nan")), 3)
    assert "no checkpoint was saved" in str(caught.value) and "is kept" not in str(caught.value)


def test_a_nan_after_checkpoints_names_the_last_one_kept(tmp_path: Path) -> None:
    folder, _ = run_with_checkpoints(tmp_path, [10, 30])
    with pytest.raises(NonFiniteLossError) as caught:
        Supervisor(folder).on_step(SimpleNamespace(last_loss=float("inf")), 33)
    assert "the loss became inf at step 33; its last good checkpoint (step 30) is kept" in str(caught.value)


def test_a_nan_right_after_a_checkpoint_does_not_call_that_checkpoint_good(tmp_path: Path) -> None:
    """A learning rate of 1 made the loss NaN at step 20, one step after a checkpoint: the run said 'its last good
    checkpoint (step 19) is kept', but step 19's weights were the ones whose loss was NaN (a resume from it failed again
    at once, its export drew NaN images); step 18's was the good one."""
    folder, _ = run_with_checkpoints(tmp_path, [18, 19])
    with pytest.raises(NonFiniteLossError) as caught:
        Supervisor(folder).on_step(SimpleNamespace(last_loss=float("nan")), 20)
    said = str(caught.value)
    assert "the checkpoint of step 19 holds the weights that gave it" in said, said
    assert "its last good checkpoint (step 18) is kept" in said, said


def test_a_nan_right_after_the_only_checkpoint_says_a_new_try_starts_over(tmp_path: Path) -> None:
    folder, _ = run_with_checkpoints(tmp_path, [19])
    with pytest.raises(NonFiniteLossError) as caught:
        Supervisor(folder).on_step(SimpleNamespace(last_loss=float("nan")), 20)
    assert "good checkpoint" not in str(caught.value) and "a new try trains from the start" in str(caught.value)


def test_dbtui_runs_shows_the_nan_loss_of_a_first_attempt_that_failed_with_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A first attempt whose loss became NaN at step 1 was listed with last loss "-", as if no step had trained, where
    its events (and `dbtui runs` without a state file) said nan."""
    from dbtui.cli import main

    folder = RunFolder(tmp_path / "runs" / "nan").create()
    folder.events.write_text("", encoding="utf-8")
    supervisor = Supervisor(folder)
    supervisor.trainer = SimpleNamespace(last_loss=float("nan"), global_step=1, total_steps=10)
    with pytest.raises(NonFiniteLossError):
        supervisor.on_step(supervisor.trainer, 1)
    supervisor.write_failed()
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["runs", str(tmp_path / "runs")]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if "runs/nan" in line)
    assert "failed" in row and " nan " in row, row


def test_a_stop_before_the_first_step_keeps_the_runs_last_loss(tmp_path: Path) -> None:
    """The trainer's loss is nan until its first step: a resumed run stopped in set-up still shows the loss it had."""
    from engine.runs.folder import RunState

    folder = RunFolder(tmp_path / "run").create()
    folder.write_state(RunState(pid=1, status="stopped", step=5, total_steps=10, last_loss=0.25))
    supervisor = Supervisor(folder)
    supervisor.trainer = SimpleNamespace(last_loss=float("nan"), global_step=5, total_steps=10)
    supervisor.write_failed()
    state = folder.read_state()
    assert state is not None and state.last_loss == 0.25
