"""A loss that turns NaN right after a checkpoint: the checkpoint before it, the last good one, is still there."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.runs.checkpoints import complete_checkpoints
from engine.runs.folder import RunFolder
from engine.runs.in_process import train
from engine.runs.sinks import read_events
from engine.runs.supervisor import Supervisor
from engine.training.watchdogs import NonFiniteLossError
from tests.training_helpers import tiny_profile


def _run(tmp_path: Path, nan_from: int | None) -> RunFolder:
    """Six steps with a checkpoint every second one and keep_last_n = 1; the loss NaN once the weights are past
    ``nan_from`` steps (None: never)."""
    profile = tiny_profile(tmp_path, training={"max_train_steps": 6}, saving={"every_n_steps": 2, "keep_last_n": 1})
    folder = RunFolder(tmp_path / "run").create()
    supervisor = Supervisor(folder)

    def poison(trainer) -> None:
        supervisor.attach(trainer)
        original = trainer.loss
        trainer.loss = lambda batch: original(batch) * (
            float("nan") if nan_from is not None and trainer.global_step >= nan_from else 1.0)

    train(profile, folder.path, step_hooks=[supervisor.on_step], trainer_hook=poison)
    return folder


def test_a_nan_right_after_a_checkpoint_keeps_the_good_one_before_it(tmp_path: Path) -> None:
    """With keep_last_n = 1 the save at step 4 deleted step 2's checkpoint, and step 5's loss was NaN: the only
    checkpoint left held the weights whose loss was NaN (a resume failed again at once), though the run said it kept
    the last good one."""
    with pytest.raises(NonFiniteLossError):
        _run(tmp_path, nan_from=4)
    folder = RunFolder(tmp_path / "run")
    assert [step for step, _ in complete_checkpoints(folder)] == [2, 4]
    [failed] = [e for e in read_events(folder.events) if e.kind == "run_failed"]
    assert "its last good checkpoint (step 2) is kept" in failed.reason, failed.reason


def test_a_run_that_goes_on_still_keeps_only_keep_last_n(tmp_path: Path) -> None:
    folder = _run(tmp_path, nan_from=None)
    assert [step for step, _ in complete_checkpoints(folder)] == [4]
    # Logged, at the step after the save (its loss finite): the best step's advice tells such a deletion from one by hand.
    said = [(e.kind, getattr(e, "step", None)) for e in read_events(folder.events) if e.kind in (
        "checkpoint_saved", "checkpoints_rotated", "step_ended")]
    at = said.index(("checkpoint_saved", 4))
    assert said[at:at + 3] == [("checkpoint_saved", 4), ("step_ended", 5), ("checkpoints_rotated", None)]
    assert [(e.steps, e.keep_last_n) for e in read_events(folder.events) if e.kind == "checkpoints_rotated"] == [([2], 1)]


def test_the_nan_advice_says_the_change_takes_a_new_run(tmp_path: Path) -> None:
    """The advice said to lower optimizer.learning_rate; `dbtui resume` met the same NaN at the same step (a resume is
    exact) and `--resume --set optimizer.learning_rate=…` was refused: the user learnt it in two failed tries."""
    with pytest.raises(NonFiniteLossError) as caught:
        _run(tmp_path, nan_from=4)
    assert "a new run (`--set name=NEW_NAME`)" in caught.value.advice
    [failed] = [e for e in read_events(RunFolder(tmp_path / "run").events) if e.kind == "run_failed"]
    assert "meets the same NaN" in failed.advice


def test_a_save_asked_at_the_last_step_still_deletes_the_older_checkpoints(tmp_path: Path) -> None:
    """A save asked at the run's last step left its rotation for a step after it, which never came: the finished run
    kept the checkpoint before it too, one more than keep_last_n (a full checkpoint's disk, never freed)."""
    from engine.runs.control import request

    profile = tiny_profile(tmp_path, training={"max_train_steps": 4}, saving={"every_n_steps": 2, "keep_last_n": 1})
    folder = RunFolder(tmp_path / "run").create()
    supervisor = Supervisor(folder)
    ask_at_the_last = lambda trainer, step: request(folder, "save") if step == 4 else None  # noqa: E731
    assert train(profile, folder.path, step_hooks=[ask_at_the_last, supervisor.on_step],
                 trainer_hook=supervisor.attach).status == "finished"
    assert [step for step, _ in complete_checkpoints(folder)] == [4]


def test_a_run_resumed_after_dying_the_step_after_a_save_deletes_the_older_checkpoints(tmp_path: Path) -> None:
    """Killed (or out of memory) in the step after a save, the run kept the checkpoint before it; its resume deleted
    it only at the step after its own next save: one that saved no more kept both to its end, and on a disk with room
    for keep_last_n + 1 checkpoints every later save was refused as the disk was too full."""
    profile = tiny_profile(tmp_path, training={"max_train_steps": 6}, saving={"every_n_steps": 2, "keep_last_n": 1})
    folder = RunFolder(tmp_path / "run").create()
    first = Supervisor(folder)

    def die_after_the_save(trainer, step: int) -> None:
        if step == 5:
            raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        train(profile, folder.path, step_hooks=[die_after_the_save, first.on_step], trainer_hook=first.attach)
    assert [step for step, _ in complete_checkpoints(folder)] == [2, 4]
    second = Supervisor(folder, resume=folder.checkpoints / "step-00000004")
    assert train(profile, folder.path, step_hooks=[second.on_step], trainer_hook=second.attach).status == "finished"
    assert [step for step, _ in complete_checkpoints(folder)] == [4]
