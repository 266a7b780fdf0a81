"""A run whose events.jsonl was deleted by hand keeps its base model's scores on resume: its best-step rule measured
prompt fidelity from the first round after the resume instead, without a word."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from engine.evaluation.best import best_step_of_run
from engine.events import SamplesScored, Warning
from engine.runs.sinks import read_events
from tests.training_helpers import tiny_profile

TINY_SCORERS = {"clip_model": "builtin:tiny-clip", "dino_model": "builtin:tiny-dino"}
# Two prompts of one image each, where the default's five prompts of two made ten images a round: the tests read
# whether the base round's scores come back, not how many images made them (prompt00_00.png is there either way).
EVALUATION = {**TINY_SCORERS, "prompts": ["photo of zwx disc", "photo of a disc"], "images_per_prompt": 1}
CONCEPT = {"instance_dir": "builtin:demo-instance", "instance_prompt": "photo of zwx disc", "class_prompt": "photo of a disc"}


@pytest.fixture(scope="module")
def stopped_scored_run(tmp_path_factory: pytest.TempPathFactory):
    """(profile, run folder) of a scored run stopped at step 2, its checkpoint there: trained once, each test
    resumes its own copy."""
    from engine.runs.folder import RunFolder
    from engine.runs.in_process import train
    from engine.runs.supervisor import Supervisor

    tmp_path = tmp_path_factory.mktemp("stopped-scored")
    profile = tiny_profile(tmp_path, concepts=[CONCEPT], training={"max_train_steps": 4}, saving={"every_n_steps": 2},
                           sampling={"num_images": 1, "every_n_steps": 2, "steps": 2},
                           evaluation={"enabled": True, **EVALUATION})
    folder = RunFolder(tmp_path / "run").create()
    cancel = threading.Event()
    first = Supervisor(folder, cancel=cancel)
    stop_after_two = lambda trainer, step: cancel.set() if step == 2 else None
    assert train(profile, folder.path, cancel=cancel, step_hooks=[first.on_step, stop_after_two], trainer_hook=first.attach).step == 2
    return profile, folder


def _copy(stopped_scored_run, tmp_path: Path):
    from engine.runs.folder import RunFolder

    profile, folder = stopped_scored_run
    shutil.copytree(folder.path, tmp_path / "run")
    return profile, RunFolder(tmp_path / "run")


def _resume(profile, folder) -> list:
    from engine.runs.checkpoints import latest_checkpoint
    from engine.runs.in_process import train
    from engine.runs.supervisor import Supervisor

    second = Supervisor(folder, resume=latest_checkpoint(folder))
    assert train(profile, folder.path, step_hooks=[second.on_step], trainer_hook=second.attach).step == 4
    return list(read_events(folder.events))


def test_a_resume_after_events_jsonl_was_deleted_scores_the_base_round_from_its_images(tmp_path: Path, stopped_scored_run) -> None:
    profile, folder = _copy(stopped_scored_run, tmp_path)
    [base] = [e for e in read_events(folder.events) if isinstance(e, SamplesScored) and e.step == 0]
    folder.events.unlink()
    events = _resume(profile, folder)
    [again] = [e for e in events if isinstance(e, SamplesScored) and e.step == 0]
    assert again.scores == base.scores
    assert best_step_of_run(folder.events).start_clip_t == base.scores["clip_t"]
    assert any("events.jsonl holds no scores of the base round" in e.message for e in events if isinstance(e, Warning))


def test_without_its_images_too_the_base_model_is_scored_again_and_said(tmp_path: Path, stopped_scored_run) -> None:
    profile, folder = _copy(stopped_scored_run, tmp_path)
    folder.events.unlink()
    (folder.path / "evaluation" / "step-000000" / "prompt00_00.png").unlink()
    events = _resume(profile, folder)
    assert [e.step for e in events if isinstance(e, SamplesScored)][0] == 0
    assert any("holds no scores of the base round" in e.message and "its images are not all there" in e.message
               and "the base model is scored again" in e.message for e in events if isinstance(e, Warning))
