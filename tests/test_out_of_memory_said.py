"""A run out of GPU memory says the memory advice once, wherever its error is printed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from engine.memory.savers import memory_advice
from engine.profile import save_profile
from engine.runs.folder import RunFolder
from engine.runs.sinks import read_events
from engine.training.trainer import Trainer
from tests.training_helpers import tiny_profile


@pytest.fixture
def out_of_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    def loss(self: Trainer, batch: object) -> torch.Tensor:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(Trainer, "loss", loss)


def test_the_trainers_line_says_the_memory_advice_once(tmp_path: Path, out_of_memory: None,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """The error's message held the advice, which the trainer's entry point then added again: twice in its log line."""
    from engine.runs.worker import main

    profile = tiny_profile(tmp_path, training={"max_train_steps": 2})
    folder = RunFolder(tmp_path / "run").create()
    save_profile(profile, folder.profile)
    assert main([str(folder.path)]) == 1
    advice = memory_advice(profile, bf16=False)  # the CPU has none, as a T4
    said = [line for line in capsys.readouterr().err.splitlines() if line.startswith("dbtui trainer:")]
    assert said == [f"dbtui trainer: the GPU ran out of memory at step 0; {advice}"]
    [failed] = [event for event in read_events(folder.events) if event.kind == "run_failed"]
    assert (failed.reason, failed.advice, failed.step) == ("the GPU ran out of memory", advice, 0)


def test_the_fit_test_out_of_memory_still_says_the_advice(tmp_path: Path, out_of_memory: None,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """The wizard shows the fit test's error line alone: the advice stays in it, once."""
    from engine.runs.fit_process import ERROR_KEY, main

    profile = tiny_profile(tmp_path)
    save_profile(profile, tmp_path / "profile.toml")
    assert main([str(tmp_path / "profile.toml"), "--work-dir", str(tmp_path)]) == 1
    [line] = [line for line in capsys.readouterr().out.splitlines() if ERROR_KEY in line]
    advice = memory_advice(profile, bf16=False)
    assert json.loads(line)[ERROR_KEY] == f"the GPU ran out of memory at step 0; {advice}"


def test_the_final_previews_out_of_memory_finish_the_run_with_its_model_exported(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The run failed as out of memory at its last step with the training's advice (gradient checkpointing…), its model
    exported: a resume trained the steps since its last checkpoint again, exported them, and ran out of memory here
    again."""
    from engine.runs.worker import main

    sample = Trainer.sample

    def previews(self: Trainer, step: int) -> list[Path]:
        if step == self.total_steps:  # the exported model's previews (the bf16 weights widened to fp32 still held)
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return sample(self, step)

    monkeypatch.setattr(Trainer, "sample", previews)
    folder = RunFolder(tmp_path / "run").create()
    save_profile(tiny_profile(tmp_path, training={"max_train_steps": 3}, saving={"export": ["diffusers"]}), folder.profile)
    assert main([str(folder.path)]) == 0
    assert (folder.outputs / "diffusers" / "model_index.json").is_file()
    assert folder.read_state().status == "finished"
    events = list(read_events(folder.events))
    assert not [event for event in events if event.kind == "run_failed"]
    [warned] = [event for event in events if event.kind == "warning" and "memory" in event.message]
    assert warned.message == (f"the GPU ran out of memory making the previews of step 3, after the model was exported "
                              f"to {folder.outputs}: the run is finished without them")
    assert "sampling.num_images" in warned.advice
