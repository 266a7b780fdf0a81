"""A run's scores in words, the same in the terminal and in the report: each scored round, the best step,
and why no step qualifies when none does.

The rule and its numbers are ``engine/evaluation/best.py``'s; this only says them.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from engine.evaluation.best import BestStep, ScoredRounds, scoring_events, step_number
from engine.events import Event
from engine.runs.folder import RunFolder


def score(value: float | None) -> str:
    """A score to three places; "–" where it does not apply, or is no number (a NaN from black images)."""
    return f"{value:.3f}" if isinstance(value, (int, float)) and math.isfinite(value) else "–"


def sentence(words: str) -> str:
    """``words`` begun with a capital; str.capitalize() would lower the rest: a path's /home/Alice, "CLIP-T"."""
    return words[:1].upper() + words[1:]


def measures(best: BestStep) -> str:
    """The best step's scores, for after words that name the step already."""
    return best.describe().removeprefix(f"step {best.step}: ")


def uncompared_said(best: BestStep) -> str | None:
    """Which scored steps the best was not compared with: those after a resume that turned [evaluation] off, and those
    before a resume that changed its settings; None where it was compared with every step scored. Without it the best
    step read as better than steps never scored, or scored on another scale."""
    said = []
    if best.rescaled:
        at = f"the resume from step {best.rescaled_at}" if best.rescaled_at is not None else "a resume"
        earlier = f" (under those, the best was step {best.earlier_best})" if best.earlier_best is not None else ""
        said.append(f"the rounds scored before {at} changed the [evaluation] settings are not compared{earlier}")
    if best.unscored_from is not None:
        said.append(f"steps after {best.unscored_from} were not scored (the resume from step {best.unscored_from} turned "
                    "[evaluation] off), so the best step is chosen among the steps scored up to it; compare the later "
                    "previews by eye")
    return "; ".join(said) or None


class ScoreTrack:
    """A run's scored rounds as its events come, as the best-step rule counts them (``ScoredRounds``): the latest per
    step, without the branch a resume left, of the newest base round's [evaluation] settings."""

    def __init__(self) -> None:
        self.scored = ScoredRounds()

    def add(self, event: Event) -> None:
        self.scored.add(event)

    @property
    def rounds(self) -> dict[int, dict[str, float | None]]:
        return self.scored.rounds

    @property
    def tolerance(self) -> float:
        return self.scored.tolerance

    @property
    def best(self) -> BestStep | None:
        return self.scored.best

    @property
    def start(self) -> tuple[int, float] | None:
        """The step and CLIP-T prompt fidelity is measured from: the base model's, or the first scored step's."""
        return next(((step, s["clip_t"]) for step, s in sorted(self.rounds.items()) if s.get("clip_t") is not None), None)

    def lost(self, step: int) -> bool:
        """Whether the step's CLIP-T fell more than the tolerance below the start: the rule rejects it."""
        clip_t, start = self.rounds.get(step, {}).get("clip_t"), self.start
        return clip_t is not None and start is not None and clip_t < start[1] - self.tolerance

    def said(self, step: int) -> str | None:
        """A scored round in one line (after ``add``), and what the rule makes of it; None where ``step`` holds no round
        the rule compares (a damaged line's, or one of other [evaluation] settings than the base round's)."""
        rounds, start = self.rounds, self.start
        if step_number(step) not in rounds:  # a damaged line's step may be no number, or unhashable
            return None
        scores = rounds[step]
        clip_t = score(scores.get("clip_t"))
        if start is not None and start[0] != step and scores.get("clip_t") is not None:
            clip_t += f" (start {start[1]:.3f})"
        line = (f"step {step}{' (base model)' if step == 0 else ''}: subject {score(scores.get('subject'))}, "
                f"CLIP-T {clip_t}, drift {score(scores.get('class_drift'))}")
        if self.lost(step):
            return f"{line} — CLIP-T fell more than {self.tolerance:g} below the start: likely overfit"
        best = self.best
        return f"{line} — best step so far" if best is not None and best.step == step else line

    def why_none(self, *, ended: bool) -> str | None:
        """Why no step qualifies; None where one does, or where nothing was scored."""
        if not self.rounds or self.best is not None:
            return None
        yet = "" if ended else " yet"
        if all(s.get("subject") is None for s in self.rounds.values()):
            return ("no round scored the subject: none of the evaluation prompts names a concept's identifier (as in "
                    "“a zwx dog on the beach”), so no step can be chosen, however long the run; name it in "
                    "evaluation.prompts, or leave that list empty for the defaults")
        if self.scored.rescaled and not any(step > 0 for step in self.rounds):
            at = "" if self.scored.changed_at is None else f" at step {self.scored.changed_at}"
            return (f"no step qualifies{yet}: the [evaluation] settings changed{at}, so the rounds scored before are not "
                    "compared; " + ("the run ended before a step was scored under them" if ended
                                    else "no step has been scored under them yet"))
        if not any(step > 0 and s.get("subject") is not None and s.get("clip_t") is not None
                   for step, s in self.rounds.items()):
            return ("no step qualifies: the run ended before a step after the base model was scored" if ended
                    else "no step qualifies yet: no step after the base model has been scored yet")
        start = self.start
        assert start is not None  # a step with a CLIP-T was scored
        # Every step after the base lost prompt fidelity: the best-step rule's own reason, which says what to change.
        return (f"no step qualifies{yet}: every scored step's CLIP-T fell more than {self.tolerance:g} "
                f"(evaluation.prompt_fidelity_tolerance) below the start, {start[1]:.3f}, so each is likely overfit; "
                "train with a lower learning rate, or raise evaluation.prompt_fidelity_tolerance to accept more drift")


def track_of_run(events_file: Path, end: int | None = None) -> ScoreTrack:
    """The scored rounds of a run's events.jsonl up to byte ``end`` (None: all; none when it cannot be read)."""
    track = ScoreTrack()
    for event in scoring_events(events_file, end):
        track.add(event)
    return track


def best_of_run_said(folder: RunFolder, *, ended: bool) -> str | None:
    """The best step of a scored run and how to keep it, or why no step qualifies; None for an unscored run.
    ``ended``: no trainer runs it now, so the best step is no longer one "so far"."""
    # Here, not above: keeping reads checkpoints (the convert package), which the terminal's dashboard never needs.
    from engine.runs.keep import keep_of_run

    keep = keep_of_run(folder)
    if keep is None:
        return track_of_run(folder.events).why_none(ended=ended)
    # The wizard's and the report's words: the checkpoint may not be kept, or the outputs may hold it.
    uncompared = uncompared_said(keep.best)
    return (f"best step{'' if ended else ' so far'}: {keep.best.step} — {measures(keep.best)}; "
            f"{keep.advice(os.path.abspath(folder.path))}" + (f"; {uncompared}" if uncompared else ""))


def scores_legend(scorers: list[str]) -> str:
    """What each score column measures and which way is better (the report's table named DINO, CLIP-I and class drift
    and said no more, so a reader could not tell a rising drift from a good sign); ``scorers``: the profile's
    ``evaluation.clip_model`` and ``dino_model``, the built-in random-weight ones flagged."""
    random = [name for name in scorers if name.startswith("builtin:tiny-")]
    note = (f" Scored by {' and '.join(random)}, random-weight scorers built offline: these numbers show the mechanics, "
            "not quality; judge the previews.") if random else ""
    return ("Subject fidelity: how much the images of prompts that name a concept’s identifier look like its instance "
            "images, the mean of DINO and CLIP-I similarity (higher: closer). CLIP-T, prompt fidelity: how well each image "
            "matches its prompt, the identifier left out (higher: better; a fall means prompts stop working). Class drift: "
            "how far images of prompts without the identifier moved from the base model’s of the same seeds (0: unchanged; "
            "rising: the model is forgetting what the class looks like). Compare them within one run: other scorer models "
            f"measure on other scales.{note}")
