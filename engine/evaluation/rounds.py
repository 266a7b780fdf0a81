"""One run's scoring: the evaluation set, the instance images' embeddings, the base model's images.

The trainer generates each round's images (``RUN/evaluation/step-NNNNNN/``, one fixed seed per
image) and hands them here. Step 0 is the base model, scored before the first step: its images of
identifier-free prompts are what class drift is measured from, and its CLIP-T is the start the
best-step rule compares with. A resumed run reads those images back from ``step-000000/``, whose
``settings.json`` says what they were made and scored with (``round_settings``): a resume under other
settings scores the base model again (``PreviewRounds.score_base_again``), since its images and its
CLIP-T would measure the new rounds on another scale (``base_round.py``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from engine.data.images import DataError, list_images, load_rgb
from engine.evaluation.base_round import (BASE_SETTINGS, UNFINISHED, base_round_difference, image_name, round_settings,
                                         spelt_as_recorded)
from engine.evaluation.metrics import mean_of, mean_similarity, paired_similarity
from engine.evaluation.prompts import EvalPrompt, evaluation_prompts
from engine.evaluation.scorers import Scorers, ScorersUnavailableError, SmallParts, check_scorers, loaded_scorers
from engine.events import Event, SamplesScored, Warning
from engine.profile import Profile

BASE_STEP = 0
# The short side an instance photo is shrunk to as it is read. The scorers resize to 224 px anyway (CLIP's
# short side, DINO's whole image; 336 for the largest CLIP), so their input is unchanged in substance,
# while 30 photos of 24 MP no longer hold about 2 GB at once.
SCORING_SIDE = 512
# Images a scorer embeds at once: a concept's instance photos in one pass held them all as tensors on the device.
SCORING_BATCH = 16


def round_folder(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / "evaluation" / f"step-{step:06d}"


class Evaluation:
    """Scores rounds for one run; once a scorer fails to load, one warning and no more scoring."""

    def __init__(self, profile: Profile, run_dir: Path, instance_dirs: list[Path], device: torch.device,
                 emit: Callable[[Event], None], *, reads_negative: bool = True):
        self.settings = profile.evaluation
        self.reads_negative = reads_negative  # whether the model's images depend on sampling.negative_prompt
        self.scale = round_settings(profile)
        self.prompts: list[EvalPrompt] = evaluation_prompts(profile)
        self.run_dir = Path(run_dir)
        self.instance_dirs = list(instance_dirs)
        self.device = device
        self.emit = emit
        self.available = True
        self._checked: SmallParts | None = None  # what the round's check read, for its scoring
        self._instances: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # concept → (DINO, CLIP-I) features
        self._base: dict[int, torch.Tensor] | None = None  # identifier-free prompt index → base DINO features

    @property
    def texts(self) -> list[str]:
        return [p.prompt for p in self.prompts]

    def folder(self, step: int) -> Path:
        return round_folder(self.run_dir, step)

    def base_difference(self) -> str | None:
        """None when the base round (whose folder exists) was made with this run's settings; else what differs
        (``base_round_difference``). A scorer folder the round names as this run does, spelt otherwise, is then spelt as
        it was, in this round's record and the rounds' events: the best-step rule compares rounds by their settings."""
        folder, events = self.folder(BASE_STEP), self.run_dir / "events.jsonl"
        self.scale = spelt_as_recorded(self.scale, folder, events, reads_negative=self.reads_negative)
        return base_round_difference(folder, self.scale, events)

    def unreadable_base_image(self) -> str | None:
        """Class drift reads the base round's identifier-free images back after a resume: a damaged one failed the run
        at its first round, a missing one dropped that prompt's drift without a word. Either is made again."""
        folder = self.folder(BASE_STEP)
        for i, prompt in enumerate(self.prompts):
            for k in range(0 if prompt.is_subject else self.settings.images_per_prompt):
                path = folder / image_name(i, k)
                if not path.is_file():
                    return f"the base round's image {path} is missing"
                try:
                    load_rgb(path)
                except DataError:
                    return f"the base round's image {path} cannot be read (damaged)"
        return None

    def base_scored(self) -> bool:
        """Whether the run's events.jsonl holds the base round's scores: deleted by hand, it holds none, and the best-step
        rule would measure prompt fidelity from the first round after the resume."""
        from engine.evaluation.best import scoring_events

        return any(isinstance(e, SamplesScored) and e.step == BASE_STEP for e in scoring_events(self.run_dir / "events.jsonl"))

    def base_images(self) -> list[Any] | None:
        """The base round's images as ``score`` takes them, read back from its folder; None when one is missing or damaged."""
        folder = self.folder(BASE_STEP)
        try:
            return [load_rgb(folder / image_name(i, k)) for i in range(len(self.prompts)) for k in range(self.settings.images_per_prompt)]
        except (DataError, OSError):
            return None

    def check_scorers(self) -> bool:
        """Whether the scorers can be loaded, as far as their small files and their weights' being there say
        (``check_scorers``): found out before a round generates its images, which a scorer failing afterwards wasted
        (minutes of SDXL or Flux work)."""
        if self.available:
            try:
                self._checked = check_scorers(self.settings.clip_model, self.settings.dino_model)
            except ScorersUnavailableError as error:
                self._unavailable(error)
        return self.available

    def start_base(self) -> None:
        """Mark the base round unfinished before its images are made (``base_round.cut_short``)."""
        folder = self.folder(BASE_STEP)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / UNFINISHED).write_text("these images were never scored: a resume moves them aside and scores the base "
                                         "model again\n", encoding="utf-8")

    def record_base(self) -> None:
        """Write the base round's settings: once its event is said, so that a round cut short records nothing and is
        scored again, and a recorded one is in the run's events (the best-step rule reads its scale there)."""
        folder = self.folder(BASE_STEP)
        (folder / BASE_SETTINGS).write_text(json.dumps(self.scale, indent=1), encoding="utf-8")
        (folder / UNFINISHED).unlink(missing_ok=True)

    def score(self, step: int, images: list[Any]) -> SamplesScored | None:
        """The round's event, from its images (``images_per_prompt`` per prompt, in prompt order)."""
        if not self.available:
            return None
        checked, self._checked = self._checked, None  # one round's: a later round reads the files as they are then
        try:
            with loaded_scorers(self.settings.clip_model, self.settings.dino_model, self.device, checked) as scorers:
                return self._score(step, images, scorers)
        except ScorersUnavailableError as error:  # a failure the small files did not show (the weights' own)
            self._unavailable(error)
            return None

    def _unavailable(self, error: ScorersUnavailableError) -> None:
        self.available = False
        self.emit(Warning(message=f"{error}; scoring is skipped for the rest of this run", advice=error.advice))

    def _score(self, step: int, images: list[Any], scorers: Scorers) -> SamplesScored:
        per_image = self.settings.images_per_prompt
        groups = [images[i * per_image:(i + 1) * per_image] for i in range(len(self.prompts))]
        if step == BASE_STEP:
            self._base = {i: scorers.dino_features(group) for i, group in enumerate(groups) if not self.prompts[i].is_subject}
        base = self._base_features(scorers)
        rows = [self._score_prompt(i, prompt, group, scorers, base) for i, (prompt, group) in enumerate(zip(self.prompts, groups))]
        subject = [r for r in rows if r["dino"] is not None]
        scores = {
            "dino": mean_of([r["dino"] for r in subject]),
            "clip_i": mean_of([r["clip_i"] for r in subject]),
            "clip_t": mean_of([r["clip_t"] for r in subject]),
            "class_drift": mean_of([r["class_drift"] for r in rows]),
        }
        scores["subject"] = mean_of([scores["dino"], scores["clip_i"]])
        return SamplesScored(step=step, scores=scores, prompts=rows, folder=str(self.folder(step)), settings=self.scale)

    def _score_prompt(self, index: int, prompt: EvalPrompt, images: list[Any], scorers: Scorers,
                      base: dict[int, torch.Tensor] | None) -> dict[str, Any]:
        """One prompt's scores; subject scores only for prompts about a concept, drift only for the others."""
        row: dict[str, Any] = {"prompt": prompt.prompt, "scored_prompt": prompt.scored_prompt,
                               "dino": None, "clip_i": None, "clip_t": None, "class_drift": None}
        clip_images = scorers.clip_image_features(images)
        if prompt.is_subject:
            assert prompt.concept is not None
            dino_real, clip_real = self._instance_features(prompt.concept, scorers)
            row["dino"] = mean_similarity(scorers.dino_features(images), dino_real)
            row["clip_i"] = mean_similarity(clip_images, clip_real)
            text = scorers.clip_text_features([prompt.scored_prompt]).expand(len(images), -1)
            row["clip_t"] = paired_similarity(clip_images, text)
        elif base is not None and index in base:
            # 1 − similarity to the same seed's base-model image: 0 while the class looks as it did.
            row["class_drift"] = 1.0 - paired_similarity(scorers.dino_features(images), base[index])
        return row

    def _instance_features(self, concept: int, scorers: Scorers) -> tuple[torch.Tensor, torch.Tensor]:
        """The real images' embeddings, computed once per run (they never change)."""
        if concept not in self._instances:
            paths = list_images(self.instance_dirs[concept])
            dino, clip = [], []
            for start in range(0, len(paths), SCORING_BATCH):
                real = [_for_scoring(path) for path in paths[start:start + SCORING_BATCH]]
                dino.append(scorers.dino_features(real))
                clip.append(scorers.clip_image_features(real))
            self._instances[concept] = (torch.cat(dino), torch.cat(clip))
        return self._instances[concept]

    def _base_features(self, scorers: Scorers) -> dict[int, torch.Tensor] | None:
        """The base model's identifier-free images; after a resume, read back from the step-0 folder."""
        if self._base is None:
            folder = self.folder(BASE_STEP)
            base = {}
            for i, prompt in enumerate(self.prompts):
                paths = [folder / image_name(i, k) for k in range(self.settings.images_per_prompt)]
                if not prompt.is_subject and all(p.exists() for p in paths):
                    base[i] = scorers.dino_features([load_rgb(p) for p in paths])
            self._base = base
        return self._base


def _for_scoring(path: Path) -> Any:
    """An instance photo, shrunk (never enlarged) to a short side of ``SCORING_SIDE``."""
    from PIL import Image

    picture = load_rgb(path)
    scale = SCORING_SIDE / min(picture.size)
    if scale < 1:
        size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
        picture = picture.resize(size, Image.Resampling.LANCZOS)
    return picture


def tracker_values(event: SamplesScored) -> dict[str, float]:
    """The round's overall scores for TensorBoard/wandb, under ``eval/``; scores that do not apply are left out."""
    return {f"eval/{name}": value for name, value in event.scores.items() if value is not None}
