"""Rounds scored under other [evaluation] settings are not compared: a resume that changes them scores the base model
again (class drift read the old prompt list's base images by prompt number, CLIP-T's start was the old set's), and the
best-step rule and the score plot compare only rounds of the newest base round's settings."""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from PIL import Image

from dbtui.widgets.score_plot import ScoreHistory
from engine.evaluation.best import best_step
from engine.events import SamplesScored, Warning
from engine.training.preview_rounds import PreviewRounds
from tests.training_helpers import tiny_profile

TINY_SCORERS = {"clip_model": "builtin:tiny-clip", "dino_model": "builtin:tiny-dino"}
OLD = {"prompts": ["photo of zwx disc", "photo of a disc"]}
NEW = {"prompts": ["photo of a cat"] + OLD["prompts"]}  # a prompt inserted first: every prompt's number moves


def picture(prompt: str, seed: int) -> Image.Image:
    """One image per (prompt, seed), the same at every round: the model never changes in these tests."""
    digest = hashlib.sha256(f"{prompt}/{seed}".encode()).digest()
    pixels = torch.randint(0, 256, (64, 64, 3), generator=torch.Generator().manual_seed(int.from_bytes(digest[:4], "big")),
                           dtype=torch.uint8)
    return Image.fromarray(pixels.numpy())


def rounds_for(tmp_path: Path, demo_data: Path, evaluation: dict, emitted: list) -> PreviewRounds:
    profile = tiny_profile(tmp_path, evaluation={"enabled": True, "images_per_prompt": 1, **TINY_SCORERS, **evaluation})
    trainer = SimpleNamespace(profile=profile, accelerator=SimpleNamespace(is_main_process=True, trackers=[]),
                              run_dir=tmp_path / "run", instance_dirs=[demo_data / "instance"], device=torch.device("cpu"),
                              emit=emitted.append, phase=lambda *a, **k: contextlib.nullcontext())
    rounds = PreviewRounds(trainer)

    def generate(folder: Path, prompts: list[str], num_images: int, seed: int):
        generated.append(folder)
        folder.mkdir(parents=True, exist_ok=True)
        images = [picture(prompt, seed + k) for prompt in prompts for k in range(num_images)]
        for i, image in enumerate(images):
            image.save(folder / f"prompt{i // num_images:02d}_{i % num_images:02d}.png")
        return [], None, images

    rounds._generate = generate  # type: ignore[method-assign]
    rounds.generated = generated = []  # type: ignore[attr-defined]  # the folders generated into
    return rounds


def test_a_resume_under_other_evaluation_settings_scores_the_base_again(tmp_path: Path, demo_data: Path) -> None:
    first: list = []
    rounds_for(tmp_path, demo_data, OLD, first).score(0)
    assert [e.step for e in first] == [0] and first[0].settings["prompts"] == OLD["prompts"]

    same: list = []
    rounds_for(tmp_path, demo_data, OLD, same).score_base_again()
    assert same == []  # the base round was scored with these settings: nothing to do again

    resumed: list = []
    rounds = rounds_for(tmp_path, demo_data, NEW, resumed)
    rounds.score_base_again()
    warning, base = resumed
    assert isinstance(warning, Warning) and "prompts" in warning.message and "not compared" in warning.message
    assert isinstance(base, SamplesScored) and base.step == 0 and base.settings["prompts"] == NEW["prompts"]
    rounds.score(40)  # the model is unchanged: every identifier-free image is its base image
    drift = {row["prompt"]: row["class_drift"] for row in resumed[-1].prompts}
    # Read back by number, "photo of a disc" (now prompt 2) was measured against the old prompt 2's image, or none.
    assert drift["photo of a disc"] == pytest.approx(0.0, abs=1e-5)
    assert drift["photo of a cat"] == pytest.approx(0.0, abs=1e-5)

    growing: list = []
    rounds_for(tmp_path, demo_data, {**NEW, "images_per_prompt": 2}, growing).score_base_again()
    assert "images_per_prompt" in growing[0].message and growing[1].step == 0


def scored(step: int, subject: float, clip_t: float, settings: dict | None) -> SamplesScored:
    return SamplesScored(step=step, scores={"subject": subject, "clip_t": clip_t}, settings=settings)


def test_the_best_step_compares_only_rounds_of_the_newest_base_rounds_settings() -> None:
    old, new = {"prompts": ["a"]}, {"prompts": ["b", "a"]}
    events = [scored(0, 0.4, 0.30, old), scored(20, 0.9, 0.30, old), scored(40, 0.8, 0.30, old),
              scored(0, 0.4, 0.20, new), scored(60, 0.5, 0.19, new)]
    best = best_step(events)
    # Step 20 had the highest subject fidelity on the old scale; the new base's CLIP-T is the start now.
    assert best is not None and (best.step, best.start_clip_t, best.qualifying) == (60, 0.20, (60,))
    assert best_step(events[:3]).step == 20
    # Rounds of an older dbtui record no settings: they are one scale, as before.
    assert best_step([scored(0, 0.4, 0.3, None), scored(10, 0.6, 0.3, None)]).step == 10


def test_the_score_plot_shows_the_newest_scale_only_and_no_infinite_score() -> None:
    history = ScoreHistory()
    for event in (scored(0, 0.4, 0.3, {"a": 1}), scored(20, float("inf"), 0.3, {"a": 1})):
        history.add(event)
    assert history.series("subject") == ([0], [0.4])  # plotext raised ValueError on inf
    history.add(scored(0, 0.5, 0.2, {"a": 2}))
    history.add(scored(40, 0.6, 0.2, {"a": 2}))
    assert history.series("subject") == ([0, 40], [0.5, 0.6])


def test_a_resume_scores_the_base_again_before_its_checkpoint_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only then are the models the base model's: after the load they hold the checkpoint's weights."""
    import engine.runs.supervisor as supervisor_module
    from engine.runs.folder import RunFolder

    done: list[str] = []

    class Checkpointer:
        def __init__(self, trainer, folder) -> None:
            pass

        def load(self, path: Path) -> int:
            done.append("load")
            return 40

    monkeypatch.setattr(supervisor_module, "Checkpointer", Checkpointer)
    supervisor = supervisor_module.Supervisor(RunFolder(tmp_path / "run").create(), main_process=False)
    supervisor.resume = tmp_path / "run" / "checkpoints" / "step-00000040"
    trainer = SimpleNamespace(rounds=SimpleNamespace(score_base_again=lambda: done.append("base")),
                              accelerator=SimpleNamespace(is_main_process=False))
    supervisor.attach(trainer)
    assert done == ["base", "load"]


def test_scorers_that_cannot_load_are_found_out_before_any_image_is_generated(
        tmp_path: Path, demo_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The base images were generated (minutes on SDXL) before the scorers failed, so settings.json was never written,
    and each later resume warned that every setting had changed, deleted the base images and generated them again."""
    import engine.evaluation.scorers as scorers_module

    monkeypatch.setattr(scorers_module, "_hub_reachable", lambda: False)
    offline = {**OLD, "dino_model": "nosuchorg/no-such-dino"}  # offline, and not in the Hugging Face cache
    first: list = []
    rounds = rounds_for(tmp_path, demo_data, offline, first)
    rounds.score(0)
    rounds.score(20)
    assert rounds.generated == []  # type: ignore[attr-defined]
    assert [type(e) for e in first] == [Warning] and "offline, and not in the Hugging Face cache" in first[0].message

    base = tmp_path / "run" / "evaluation" / "step-000000"  # as the earlier dbtui left it: images, no settings.json
    base.mkdir(parents=True)
    (base / "prompt00_00.png").write_bytes(b"png")
    resumed: list = []
    rounds = rounds_for(tmp_path, demo_data, offline, resumed)
    rounds.score_base_again()
    assert rounds.generated == [] and (base / "prompt00_00.png").exists()  # type: ignore[attr-defined]
    assert [type(e) for e in resumed] == [Warning] and "differ" not in resumed[0].message
