"""A preview asked for (the dashboard's p, `dbtui sample`) at a step that previews anyway is made once: the weights
are the same, and a second round cost a whole sampling and scoring pass (minutes on a real model)."""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from engine.events import PhaseFinished, PhaseStarted, Warning
from engine.training.preview_rounds import PreviewRounds


def _trainer(tmp_path: Path, emitted: list) -> SimpleNamespace:
    profile = SimpleNamespace(sampling=SimpleNamespace(num_images=1, prompts=["a zwx dog"], seed=0),
                              concepts=[], evaluation=SimpleNamespace(enabled=False))
    @contextlib.contextmanager
    def phase(name: str, description: str = "", total: int | None = None):
        emitted.append(PhaseStarted(phase=name, total=total, description=description))
        yield
        emitted.append(PhaseFinished(phase=name, seconds=0.0))

    return SimpleNamespace(profile=profile, accelerator=SimpleNamespace(is_main_process=True), run_dir=tmp_path,
                           emit=emitted.append, phase=phase, total_steps=100)


def test_a_second_preview_at_one_step_is_the_first_ones_files(tmp_path: Path, monkeypatch) -> None:
    emitted: list = []
    rounds = PreviewRounds(_trainer(tmp_path, emitted))
    made: list[Path] = []

    def generate(folder: Path, prompts, num_images, seed):
        made.append(folder)
        return [folder / "0.png"], None, []

    monkeypatch.setattr(rounds, "_generate", generate)
    first = rounds.sample(5)
    assert rounds.sample(5) == first and made == [tmp_path / "samples" / "step-000005"]
    assert rounds.sample(10) == [tmp_path / "samples" / "step-000010" / "0.png"] and len(made) == 2
    assert len([event for event in emitted if type(event).__name__ == "SampleSaved"]) == 2  # one a round


def _on_a_full_disk(made: list[Path], code: int = errno.ENOSPC):
    """A round's writer that writes part of an image into its folder, then meets the full disk (as Pillow's PNG writer
    does: its error names no file)."""
    def generate(folder: Path, prompts, num_images, seed):
        made.append(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "prompt00_00.png").write_bytes(b"\x89PNG half")
        raise OSError(code, os.strerror(code))
    return generate


def test_previews_the_disk_has_no_room_for_are_a_warning_and_training_goes_on(tmp_path: Path, monkeypatch) -> None:
    """A full disk at a preview failed the run (the steps since its last checkpoint lost), where a checkpoint the disk
    has no room for is a warning: previews are worth less. The round's folder goes (no half-written PNG for the report),
    its sampling phase ends, and the next round is made."""
    emitted: list = []
    rounds = PreviewRounds(_trainer(tmp_path, emitted))
    made: list[Path] = []
    monkeypatch.setattr(rounds, "_generate", _on_a_full_disk(made))
    assert rounds.sample(4) == [] and not made[0].exists()
    [warning] = [event for event in emitted if isinstance(event, Warning)]
    assert "the disk is full (or the quota used up): the previews of step 4 could not be written" in warning.message
    assert "training goes on" in warning.message
    assert f"`df -h {tmp_path / 'samples'}`" in warning.advice and "sampling.num_images" in warning.advice
    assert [type(event).__name__ for event in emitted] == ["PhaseStarted", "Warning", "PhaseFinished"]
    monkeypatch.setattr(rounds, "_generate", lambda folder, *_: ([folder / "0.png"], None, []))
    assert rounds.sample(8) == [tmp_path / "samples" / "step-000008" / "0.png"]


def test_a_round_the_disk_had_no_room_for_is_not_tried_again_at_its_step(tmp_path: Path, monkeypatch) -> None:
    """A `dbtui sample` landing on a step whose scheduled round met the full disk made the round again, and warned a
    second time; a step's round is tried once, as a successful one is made once."""
    emitted: list = []
    rounds = PreviewRounds(_trainer(tmp_path, emitted))
    made: list[Path] = []
    monkeypatch.setattr(rounds, "_generate", _on_a_full_disk(made))
    assert rounds.sample(4) == [] and rounds.sample(4) == []
    assert len(made) == 1 and len([event for event in emitted if isinstance(event, Warning)]) == 1
    assert rounds.sample(8) == [] and len(made) == 2  # the next step's round is tried


def test_a_scoring_round_the_disk_has_no_room_for_is_a_warning_too(tmp_path: Path, monkeypatch) -> None:
    emitted: list = []
    trainer = _trainer(tmp_path, emitted)
    trainer.device = torch.device("cpu")
    trainer.profile.evaluation = SimpleNamespace(enabled=True, images_per_prompt=1, seed=0)
    rounds = PreviewRounds(trainer)
    rounds.evaluation = SimpleNamespace(available=True, prompts=["a"], texts=["a"], start_base=lambda: None,
                                        folder=lambda step: tmp_path / "evaluation" / f"step-{step:06d}")
    made: list[Path] = []
    monkeypatch.setattr(rounds, "_generate", _on_a_full_disk(made, errno.EDQUOT))
    assert rounds.score(6) is False and not made[0].exists()
    [warning] = [event for event in emitted if isinstance(event, Warning)]
    assert "the scoring round of step 6 could not be written" in warning.message


def test_the_last_previews_the_disk_has_no_room_for_say_the_run_is_finished(tmp_path: Path, monkeypatch) -> None:
    """The run's last round comes after its export, where no training and no resume follow: its warning said "training
    goes on" and advised fewer previews "at the next resume"."""
    emitted: list = []
    rounds = PreviewRounds(_trainer(tmp_path, emitted))
    monkeypatch.setattr(rounds, "_generate", _on_a_full_disk([]))
    assert rounds.sample(100) == []
    [warning] = [event for event in emitted if isinstance(event, Warning)]
    assert "the previews of step 100 could not be written" in warning.message
    assert "at the run's last step: it finishes without them" in warning.message
    assert "training goes on" not in warning.message and "resume" not in warning.advice
    assert f"`df -h {tmp_path / 'samples'}`" in warning.advice


def test_a_preview_folder_that_cannot_be_written_for_another_reason_still_fails_the_run(tmp_path: Path,
                                                                                        monkeypatch) -> None:
    """Permission denied, a read-only disk: every later write of the run fails too, so the run fails with its advice
    (engine/runs/file_errors.py), as before."""
    rounds = PreviewRounds(_trainer(tmp_path, []))
    monkeypatch.setattr(rounds, "_generate", _on_a_full_disk([], errno.EROFS))
    with pytest.raises(OSError) as raised:
        rounds.sample(4)
    assert raised.value.errno == errno.EROFS
