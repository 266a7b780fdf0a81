"""A negative prompt changes no image of a family that reads none (Flux): changing it on a resume keeps the scoring scale."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from engine.events import RunStarted


def _base_round(tmp_path: Path, profile, recorded_in: str) -> Path:
    """A run whose base round was scored under ``profile``, recorded as this dbtui or an older one does."""
    from engine.evaluation.base_round import round_settings

    run = tmp_path / "run"
    base = run / "evaluation" / "step-000000"
    base.mkdir(parents=True)
    if recorded_in == "settings.json":
        (base / "settings.json").write_text(json.dumps(round_settings(profile)), encoding="utf-8")
    else:  # an older dbtui's round: the run's starts say what it was made with
        for i, _ in enumerate(round_settings(profile)["prompts"]):
            (base / f"prompt{i:02d}_00.png").write_bytes(b"png")
        start = RunStarted(run_dir=str(run), profile=profile.model_dump(mode="json"), hardware={}, versions={}, total_steps=20)
        (run / "events.jsonl").write_text(json.dumps(start.to_dict()) + "\n", encoding="utf-8")
    return run


@pytest.mark.parametrize("recorded_in", ["settings.json", "run_started"])
def test_emptying_flux_s_negative_prompt_on_a_resume_keeps_the_scale(tmp_path: Path, recorded_in: str) -> None:
    """Following the run's own warning ('this one is not used; leave it empty') on a resume of a Flux run scored the base
    model again, the same images, and no longer compared the rounds scored before with the new ones for the best step."""
    from engine.evaluation.best import best_step
    from engine.evaluation.rounds import Evaluation, round_settings
    from engine.events import SamplesScored
    from tests.training_helpers import tiny_profile

    scorers = {"enabled": True, "images_per_prompt": 1, "clip_model": "builtin:tiny-clip", "dino_model": "builtin:tiny-dino"}
    old = tiny_profile(tmp_path, evaluation=scorers, sampling={"negative_prompt": "blurry"})
    now = tiny_profile(tmp_path, evaluation=scorers)
    run = _base_round(tmp_path, old, recorded_in)
    evaluation = Evaluation(now, run, [], torch.device("cpu"), lambda event: None, reads_negative=False)
    assert evaluation.base_difference() is None
    rounds = [SamplesScored(step=0, scores={"subject": 0.1, "clip_t": 0.3}, settings=round_settings(old)),
              SamplesScored(step=10, scores={"subject": 0.5, "clip_t": 0.3}, settings=round_settings(old)),
              SamplesScored(step=20, scores={"subject": 0.4, "clip_t": 0.3}, settings=evaluation.scale)]
    best = best_step(rounds)
    assert best is not None and best.qualifying == (10, 20)
    # A family that reads it makes other images with another negative prompt: its base is scored again.
    said = Evaluation(now, run, [], torch.device("cpu"), lambda event: None).base_difference()
    assert "sampling.negative_prompt" in (said or "")


@pytest.mark.parametrize(("family", "reads"), [("flux", False), ("sd", True)])
def test_the_run_s_scoring_is_told_whether_its_family_reads_a_negative_prompt(tmp_path: Path, monkeypatch, family: str,
                                                                              reads: bool) -> None:
    from engine.evaluation import rounds
    from engine.models.registry import family_named
    from engine.training.preview_rounds import PreviewRounds
    from tests.training_helpers import tiny_profile

    made: list[dict] = []

    class Recorded:
        available = True

        def __init__(self, *args, **kwargs):
            made.append(kwargs)

        def check_scorers(self) -> None:
            pass

    monkeypatch.setattr(rounds, "Evaluation", Recorded)
    profile = tiny_profile(tmp_path, evaluation={"enabled": True})
    trainer = SimpleNamespace(profile=profile, accelerator=SimpleNamespace(is_main_process=True), run_dir=tmp_path,
                              instance_dirs=[], device=torch.device("cpu"), emit=lambda event: None,
                              components=SimpleNamespace(family=family_named(family)))
    assert PreviewRounds(trainer)._scoring() is not None
    assert [kwargs["reads_negative"] for kwargs in made] == [reads]
