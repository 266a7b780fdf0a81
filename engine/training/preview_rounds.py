"""A run's previews and scoring rounds: images from the weights as they are at a step.

Previews go to ``RUN/samples/step-XXXXXX/``; a scoring round (``[evaluation]``) generates its own
prompts' images and scores them. Both generate on the main process only, from the models being
trained (put in eval mode and on the device for that moment), with prompts read from the text cache
when the text encoders are frozen, so no text encoder comes back to the device.
"""

from __future__ import annotations

import contextlib
import errno
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from engine.errors import os_error_in
from engine.events import SampleSaved, SamplesScored, Warning
from engine.models.family import TextEmbeddings, embeddings_to, guidance_for
from engine.training.distributed import main_process_says

if TYPE_CHECKING:
    from engine.evaluation.rounds import Evaluation
    from engine.training.trainer import Trainer


class PreviewRounds:
    """The trainer's previews and scoring rounds. It reads the trainer's models and settings and reports
    through it; it keeps only what rounds share: the scorers (made at the first scored round) and the
    last previews."""

    def __init__(self, trainer: Trainer):
        self.trainer = trainer
        self.evaluation: Evaluation | None = None
        self.last_images: list[Any] = []
        self.sampled: tuple[int, list[Path]] | None = None  # the last round's step and preview files
        self.held: SamplesScored | None = None  # a resume's base round, scored before its run_started (``begin``)

    def sample(self, step: int) -> list[Path]:
        """Preview images for the sample prompts into samples/step-XXXXXX/, then the round's scores."""
        trainer = self.trainer
        profile = trainer.profile
        if not trainer.accelerator.is_main_process:
            return []
        if self.sampled is not None and self.sampled[0] == step:  # asked for at a step it previews anyway (p, or the end)
            return self.sampled[1]
        paths: list[Path] = []
        if profile.sampling.num_images:
            prompts = profile.sampling.prompts or list(dict.fromkeys(c.instance_prompt for c in profile.concepts))
            folder = trainer.run_dir / "samples" / f"step-{step:06d}"
            with trainer.phase("sampling", f"step {step}", total=len(prompts) * profile.sampling.num_images):
                try:
                    paths, grid, self.last_images = self._generate(folder, prompts, profile.sampling.num_images,
                                                                   profile.sampling.seed)
                except Exception as error:
                    # Its scoring round would meet the same full disk: left out, said in the one warning.
                    scored = " (and its scoring round)" if profile.evaluation.enabled else ""
                    self._lost_to_full_disk(error, folder, f"the previews of step {step}{scored}", step)
                    self.sampled = (step, [])  # done, if without images: a request at this step warns no second time
                    return []
            trainer.emit(SampleSaved(step=step, paths=[str(p) for p in paths], grid=str(grid) if grid else None,
                                     prompts=prompts))
            from engine.training.watchdogs import NAN_ADVICE, images_look_broken

            if images_look_broken(self.last_images):
                trainer.emit(Warning(message=f"every sample image at step {step} is black: the model may be producing NaNs", advice=NAN_ADVICE))
        self.score(step)
        self.sampled = (step, paths)
        return paths

    def score(self, step: int, *, hold: bool = False) -> bool:
        """The [evaluation] round at ``step`` (step 0: the base model); ``hold``: its event waits for ``begin``. The global
        RNG is forked and images use their own seeds, so a run with scoring trains exactly as one without. Whether it
        was scored."""
        trainer = self.trainer
        evaluation = self._scoring()
        if evaluation is None:
            return False
        settings = trainer.profile.evaluation
        with torch.random.fork_rng(devices=[trainer.device] if trainer.device.type == "cuda" else []):
            with trainer.phase("scoring", f"step {step}", total=len(evaluation.prompts) * settings.images_per_prompt):
                try:
                    if step == 0:
                        evaluation.start_base()
                    _, _, images = self._generate(evaluation.folder(step), evaluation.texts, settings.images_per_prompt,
                                                  settings.seed)
                except Exception as error:
                    # A base round lost so is scored by the next resume, before its checkpoint loads (score_base_again).
                    self._lost_to_full_disk(error, evaluation.folder(step), f"the scoring round of step {step}", step)
                    return False
                event = evaluation.score(step, images)
        if event is not None and hold:
            self.held = event
        elif event is not None:
            self._report(event, track=True)
        return event is not None

    def _lost_to_full_disk(self, error: Exception, folder: Path, what: str, step: int) -> None:
        """A round (``what``, of ``step``) whose images the disk had no room for (or the quota): its folder is removed,
        with any image half-written, and a warning says so; training goes on, as at a checkpoint the disk has no room
        for. Previews are worth no failed run: it lost the steps since the last checkpoint. Any other error is raised."""
        machine = os_error_in(error)
        if machine is None or machine.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise error
        shutil.rmtree(folder, ignore_errors=True)
        free = f"free some space (`df -h {folder.parent}`)"
        if step and step >= self.trainer.total_steps:  # the last round: no training or resume follows
            self.trainer.emit(Warning(
                message=f"the disk is full (or the quota used up): {what} could not be written, at the run's last "
                        "step: it finishes without them",
                advice=f"{free} before the next run"))
            return
        self.trainer.emit(Warning(
            message=f"the disk is full (or the quota used up): {what} could not be written, and training goes on "
                    "without them",
            advice=f"{free}; or write fewer previews, at the next resume (a higher sampling.every_n_steps, a lower "
                   "sampling.num_images, or 0 for none). The next checkpoint save checks its own room, and warns where "
                   "there is not enough"))

    def _score_base_from(self, evaluation: Evaluation, base: Path, images: list[Any]) -> None:
        """The base round's scores again from its images (none are made again), said after this attempt's start."""
        from engine.evaluation.rounds import BASE_STEP

        self.trainer.emit(Warning(message=f"events.jsonl holds no scores of the base round in {base} (deleted or replaced "
                                          "since): they are scored again from its images, so that the best step is still "
                                          "measured from the base model's prompt fidelity"))
        with self.trainer.phase("scoring", f"step {BASE_STEP}"):
            self.held = evaluation.score(BASE_STEP, images)

    def begin(self, step: int) -> None:
        """Once the attempt's run_started is said: a new run's base round is scored; a resume's, scored again before its
        checkpoint loaded, is said now, after the start it belongs to (before it, it ended the earlier attempt in
        events.jsonl). An attempt that fails before this says nothing of it and records no settings for it, so the
        next resume scores it again."""
        if self.held is not None:
            # Not to the trackers: after step N, wandb drops a step-0 point, and TensorBoard would draw the new scale's
            # start into the old one's curves. events.jsonl, the plot and the report have it.
            self._report(self.held, track=False)
            self.held = None
        elif step == 0 and not main_process_says(self.trainer.accelerator, self.trainer.cancel.is_set()):
            # A stop taken as set-up ended (supervisor.py) ends the run before this round: minutes of images on SDXL/Flux.
            self.score(0)

    def _report(self, event: SamplesScored, track: bool) -> None:
        trainer = self.trainer
        trainer.emit(event)
        if event.step == 0 and self.evaluation is not None:
            self.evaluation.record_base()
        if track and trainer.accelerator.trackers:
            from engine.evaluation.rounds import tracker_values

            trainer.accelerator.log(tracker_values(event), step=event.step)

    def score_base_again(self) -> None:
        """A resume's, before its checkpoint loads (the models are still the base model): the base round again when
        ``evaluation/step-000000/`` was made under other [evaluation] settings, or what it was made with is not known,
        since class drift is measured from its images and prompt fidelity from its CLIP-T; the rounds scored before
        are not compared, and the earlier images are moved aside (``base_round.py``). Its event waits for ``begin``."""
        evaluation = self._scoring()
        if evaluation is None:  # nothing is set aside or generated for scorers that cannot score it
            return
        from engine.evaluation.base_round import cut_short, put_back, set_aside
        from engine.evaluation.rounds import BASE_STEP

        base = evaluation.folder(BASE_STEP)
        aside = None
        if base.is_dir():
            difference = evaluation.base_difference()
            damaged = evaluation.unreadable_base_image() if difference is None else None
            if difference is None and damaged is None:
                if evaluation.base_scored():
                    return
                if (images := evaluation.base_images()) is not None:
                    self._score_base_from(evaluation, base, images)
                    return
                difference = f"events.jsonl holds no scores of the base round in {base}, and its images are not all there"
            # A cut-short round may have been of other settings than the rounds before it: the events say which count.
            compared = ("the rounds scored before still count for the best step: their settings are these" if damaged else
                        "the rounds scored before count for the best step only where they were scored under these settings"
                        if cut_short(base) else "the rounds scored before are not compared with the new ones for the best step")
            difference = difference or damaged
            aside = set_aside(base)
            kept_in = f" (the earlier images are kept in {aside})" if aside is not None else ""
            self.trainer.emit(Warning(
                message=f"{difference}: the base model is scored again for this run's settings{kept_in}, and {compared}"))
        if not self.score(BASE_STEP, hold=True):
            # Its scorers failed as they loaded their weights, after its images were made: each resume set the earlier
            # round aside once more and made them again, piling up copies of one unscored round.
            back = put_back(base, aside)
            if evaluation.available:  # its images met a full disk (said): the next resume scores it again
                return
            kept = f", and the earlier base round is back in {base}" if back else f" (the earlier ones stay in {aside})" \
                if aside is not None else ""
            self.trainer.emit(Warning(message=f"the scorers failed, so the base model was not scored again: its new images "
                                              f"were removed{kept}; a resume scores it once the scorers load"))

    def _scoring(self) -> Evaluation | None:
        """The run's scoring, made at its first use; None when [evaluation] is off, on the other
        processes, and once the scorers cannot be loaded (found out before any image is generated, and said once)."""
        trainer = self.trainer
        if not trainer.profile.evaluation.enabled or not trainer.accelerator.is_main_process:
            return None
        if self.evaluation is None:
            from engine.evaluation.rounds import Evaluation

            self.evaluation = Evaluation(trainer.profile, trainer.run_dir, trainer.instance_dirs, trainer.device, trainer.emit,
                                         reads_negative=trainer.components.family.takes_negative_prompt)
            self.evaluation.check_scorers()
        return self.evaluation if self.evaluation.available else None

    @contextlib.contextmanager
    def _eval_models(self, with_text_encoders: bool) -> Iterator[tuple[Any, list[Any]]]:
        """Models ready for inference: on the device (the text encoders only if asked), eval mode; restored
        afterwards."""
        trainer = self.trainer
        unet = trainer.accelerator.unwrap_model(trainer.unet)
        text_encoders = [trainer.accelerator.unwrap_model(m) for m in trainer.text_encoders]
        visiting = [trainer.components.vae, *(text_encoders if with_text_encoders else [])]
        places = [(m, next(m.parameters()).device) for m in visiting]
        for model, _ in places:
            model.to(trainer.device)
        modes = [(m, m.training) for m in (unet, *text_encoders)]
        for model, _ in modes:
            model.eval()
        try:
            yield unet, text_encoders
        finally:
            for model, mode in modes:
                model.train(mode)
            for model, device in places:
                model.to(device)

    def _generate(self, folder: Path, prompts: list[str], num_images: int, seed: int) -> tuple[list[Path], Path | None, list[Any]]:
        """``num_images`` per prompt from the weights as they are now, seeds ``seed`` + i, into ``folder``."""
        from engine.training.sampling import sampling_pipeline, save_samples

        trainer = self.trainer
        profile = trainer.profile
        family = trainer.components.family
        cached = trainer.texts.store is not None  # the prompts were cached with the captions (generation_prompts)
        with self._eval_models(with_text_encoders=not cached) as (unet, text_encoders), trainer.half_precision():
            pipe = sampling_pipeline(trainer.components, unet, None if cached else text_encoders)
            if cached:
                def encode(captions: list[str]) -> TextEmbeddings:
                    return embeddings_to(trainer.texts.get(captions), trainer.device)
            else:
                def encode(captions: list[str]) -> TextEmbeddings:
                    return family.encode_text(trainer.components.tokenizers, text_encoders, captions, profile.training.clip_skip,
                                              trainer.device)
            negative: str | None = profile.sampling.negative_prompt
            if not negative and family.zeroes_empty_negative(trainer.model_folder):
                negative = None  # as the model's own pipeline conditions without one
            return save_samples(
                pipe, folder, prompts=prompts, negative_prompt=negative, num_images=num_images,
                steps=profile.sampling.steps, guidance=guidance_for(family, profile.sampling.guidance_scale), seed=seed,
                resolution=profile.dataset.resolution, prompt_kwargs=family.prompt_kwargs, encode=encode, family=family,
            )


def generation_prompts(profile: Any) -> list[str]:
    """What previews and scoring rounds encode: cached with the captions, so that generating needs no
    text encoder back on the device (Flux's T5 beside the transformer would not fit a 16 GB card)."""
    prompts = []
    if profile.sampling.num_images:
        prompts += profile.sampling.prompts or [c.instance_prompt for c in profile.concepts]
    if profile.evaluation.enabled:
        # Only then: it imports the dataset doctor (engine.dataset), which a run without scoring never uses.
        from engine.evaluation.prompts import evaluation_prompts

        prompts += [p.prompt for p in evaluation_prompts(profile)]
    return prompts + [profile.sampling.negative_prompt] if prompts else []
