"""A preview asked for (the dashboard's p, `dbtui sample`) at a step that previews anyway is made once: the weights
are the same, and a second round cost a whole sampling and scoring pass (minutes on a real model)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from types import SimpleNamespace

from engine.training.preview_rounds import PreviewRounds


def _trainer(tmp_path: Path, emitted: list) -> SimpleNamespace:
    profile = SimpleNamespace(sampling=SimpleNamespace(num_images=1, prompts=["a zwx dog"], seed=0),
                              concepts=[], evaluation=SimpleNamespace(enabled=False))
    return SimpleNamespace(profile=profile, accelerator=SimpleNamespace(is_main_process=True), run_dir=tmp_path,
                           emit=emitted.append, phase=lambda *a, **k: contextlib.nullcontext())


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
    assert len(emitted) == 2  # one SampleSaved a round
