"""Which step to keep, from a run's ``samples_scored`` events (no torch: the CLI reads it).

The rule: among the scored steps after the base model (step 0), those whose prompt fidelity
(CLIP-T) is at least its start minus ``evaluation.prompt_fidelity_tolerance`` are eligible; the
best is the eligible step with the highest subject fidelity (the mean of DINO and CLIP-I), the
earliest on a tie. The start is the base model's CLIP-T, or the first scored step's when the base
was not scored. DreamBooth overfits by trading prompt fidelity for subject fidelity, so this keeps
the step where the subject is learnt best before prompts stop working. Only rounds scored with the same
[evaluation] settings as the newest base round are compared (a resume that changed them scored the base
model again): other prompts, scorers or seeds measure on another scale. A round of an older dbtui records
none: it is taken to be of the settings of the rounds scored after the same base round (``Scales``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from engine.evaluation.scored_lines import SCORING_MARKERS, scoring_lines
from engine.events import Event, RunFinished, RunStarted, SamplesScored, event_from_dict, marked_lines
from engine.support.json_file import is_number

DEFAULT_TOLERANCE = 0.02  # the default of evaluation.prompt_fidelity_tolerance


@dataclass(frozen=True)
class BestStep:
    step: int
    subject: float
    clip_t: float
    start_clip_t: float
    tolerance: float
    # The other steps, for keeping the best step whose checkpoint still exists; empty when not known (built by hand).
    qualifying: tuple[int, ...] = ()  # every step the rule accepts, best first (this one first)
    failing: frozenset[int] = frozenset()  # the steps after the base the rule rejects: their CLIP-T fell too far
    # The step from which the run trained unscored: a resume from it turned [evaluation] off, so later steps were not
    # compared (None: scoring is on, or was never turned off after a round).
    unscored_from: int | None = None
    # Where a resume changed the [evaluation] settings: its step (None: unknown or unchanged), and the best step of the
    # rounds scored before under the earlier settings, which the rule no longer compares (None: none qualified).
    rescaled: bool = False
    rescaled_at: int | None = None
    earlier_best: int | None = None

    def describe(self) -> str:
        return (f"step {self.step}: subject fidelity {self.subject:.3f}, CLIP-T {self.clip_t:.3f} "
                f"(start {self.start_clip_t:.3f}, allowed drop {self.tolerance:g})")


def branch_point(event: Event) -> int | None:
    """The step the run's model stands at, where ``event`` says so: a start's (resumed from step N, 0 when new), or a
    stop's that came at a step. What was read of later steps belongs to a branch no longer followed: a resume from an
    earlier checkpoint set it aside, or it was trained after the checkpoint a crashed attempt resumed from."""
    if isinstance(event, RunStarted):
        return step_number(event.resumed_from_step)
    # Step 0 is left out: it is what a stop before the first step said before it said a resume's checkpoint's step.
    if isinstance(event, RunFinished) and event.status == "stopped" and event.step:
        return step_number(event.step)
    return None


def step_number(value: Any) -> int | None:
    """``value`` when it is a step (a whole number from 0); None for what a damaged events line holds instead."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def forget_after(by_step: dict[int, Any], step: int | None) -> set[int]:
    """Drop the entries of steps after ``step`` (a ``branch_point``; None drops nothing); returns those steps."""
    if step is None:  # most events: no scan of every step so far, which each event of a long run would repeat
        return set()
    later = {kept for kept in by_step if kept > step}
    for kept in later:
        del by_step[kept]
    return later


def finite(scores: dict[str, Any]) -> dict[str, float | None]:
    """``scores`` with a non-finite one (a NaN from a scorer given black images, say) as missing: NaN compares false
    with everything, so it would win the best step when met first, or fail every step as the start."""
    return {name: value if is_number(value) and math.isfinite(value) else None for name, value in scores.items()}


def tolerance_of(event: RunStarted, tolerance: float) -> float:
    """The run's ``evaluation.prompt_fidelity_tolerance`` as ``event`` says it; ``tolerance`` where it says none."""
    evaluation = event.profile.get("evaluation") if isinstance(event.profile, dict) else None
    value = evaluation.get("prompt_fidelity_tolerance") if isinstance(evaluation, dict) else None
    return value if is_number(value) and math.isfinite(value) else tolerance


def scoring_off(event: RunStarted) -> bool:
    """Whether the attempt ``event`` starts trains with [evaluation] off, as its profile says (unsaid: not off)."""
    evaluation = event.profile.get("evaluation") if isinstance(event.profile, dict) else None
    return isinstance(evaluation, dict) and evaluation.get("enabled") is False


def scored_round(event: Event) -> SamplesScored | None:
    """``event`` as a round the rule reads: its scores finite (``finite``), its prompts only the objects among them; None
    for another event, or a damaged line's round (a step no whole number from 0, scores no object)."""
    if not isinstance(event, SamplesScored) or step_number(event.step) is None or not isinstance(event.scores, dict):
        return None
    prompts = [row for row in event.prompts if isinstance(row, dict)] if isinstance(event.prompts, list) else []
    return replace(event, scores=finite(event.scores), prompts=prompts)


class Scales:
    """The [evaluation] settings rounds were scored with, where their events record none (an older dbtui's): those of
    the rounds scored after the same base round that record some. A resume that found an older dbtui's base round to be
    of its settings kept it (engine/evaluation/base_round.py), so its rounds and the new ones are one scale; one that
    did not scored the base model again, which starts another."""

    def __init__(self) -> None:
        self.recorded: list[Any] = [None]  # per base round read (the first: rounds before any), its rounds' settings
        self.newest: tuple[Any, int] = (None, 0)  # the newest round's settings and base: the scale where no base was scored

    def add(self, event: SamplesScored) -> int:
        """Read ``event``; returns the base round it follows, for ``of``."""
        if event.step == 0:
            self.recorded.append(None)
        base = len(self.recorded) - 1
        if self.recorded[base] is None:
            self.recorded[base] = event.settings
        self.newest = (event.settings, base)
        return base

    def of(self, settings: Any, base: int) -> Any:
        """The settings a round was scored with: its own, or its base round's rounds'."""
        return self.recorded[base] if settings is None else settings


class ScoredRounds:
    """A run's scored rounds as its events come, as the rule counts them: the latest per step, without the branch a
    resume left, of the newest base round's [evaluation] settings (its scale), under the run's tolerance."""

    def __init__(self) -> None:
        self.tolerance = DEFAULT_TOLERANCE
        # step → (scores, the settings they were scored with, the base round they follow: see Scales)
        self.held: dict[int, tuple[dict[str, float | None], Any, int]] = {}
        self.scales = Scales()
        self.rescaled = False  # the newest base round replaced rounds after the base of other settings
        self.started_at: int | None = None  # the step the newest start (a resume's) began from
        self.changed_at: int | None = None  # the step the resume that rescaled them started from
        # Per scale a resume changed from, its steps the rule accepted (best first): the step it named as the one to keep
        # still has its checkpoint kept by the rotation, though no longer compared (see kept_best_steps).
        self.earlier: list[tuple[int, ...]] = []
        self.unscored_from: int | None = None  # see BestStep.unscored_from

    def add(self, event: Event) -> None:
        point = branch_point(event)
        dropped = forget_after(self.held, point)
        if point is not None:  # a branch left: its steps' checkpoints are set aside, a new one of its step is another's
            self.earlier = [kept for kept in (tuple(s for s in steps if s <= point) for steps in self.earlier) if kept]
        if point is not None and self.changed_at is not None and self.changed_at > point:
            self.changed_at = point  # the run stands before it now: the rounds of the old scale it kept end there
        if dropped and self.rescaled and not self.sets_aside(self.scale):  # the branch held every old-scale round
            self.rescaled, self.changed_at = False, None
        if isinstance(event, RunStarted):
            self.tolerance = tolerance_of(event, self.tolerance)
            self.started_at = step_number(event.resumed_from_step)
            if not scoring_off(event):
                self.unscored_from = None
            elif self.started_at is not None:  # kept across resumes that leave it off; a --from before it moves it back
                self.unscored_from = min(self.started_at, self.unscored_from if self.unscored_from is not None else self.started_at)
        elif (scored := scored_round(event)) is not None:
            before = self.scale if self.held else None
            previous = self.best if scored.step == 0 else None
            base = self.scales.add(scored)
            if scored.step == 0:
                self.rebased(self.scales.of(scored.settings, base), before)
                if self.rescaled and previous is not None and self.scales.of(scored.settings, base) != before:
                    self.earlier.append(previous.qualifying)
            self.held[scored.step] = (scored.scores, scored.settings, base)  # a step scored again after a resume: the latest counts

    def rebased(self, scale: Any, before: Any) -> None:
        """Say whether the rounds held after the base are set aside by a new base round of ``scale`` (``before``: the
        scale compared until now). Read from what is held, not from the previous base round alone: a resume under the
        same new settings scores the base again while the old scale's rounds are still held and still set aside."""
        self.rescaled = self.sets_aside(scale)
        if not self.rescaled:
            self.changed_at = None
        elif scale != before or self.changed_at is None:
            # A resume's base round comes right after its start (engine/training/preview_rounds.py): it changed them. One
            # of the scale before it keeps the earlier change's step: the rounds set aside are that change's.
            self.changed_at = self.started_at

    def sets_aside(self, scale: Any) -> bool:
        """Whether a round held after the base is of other settings than ``scale``."""
        return any(step > 0 and self.scales.of(*made) != scale for step, (_, *made) in self.held.items())

    @property
    def scale(self) -> Any:
        """The settings of the rounds compared: other prompts, scorers or seeds measure on another scale."""
        return self.scales.of(*(self.held[0][1:] if 0 in self.held else self.scales.newest))

    @property
    def rounds(self) -> dict[int, dict[str, float | None]]:
        """The compared rounds' scores by step, in step order."""
        scale = self.scale
        return {step: scores for step, (scores, *made) in sorted(self.held.items()) if self.scales.of(*made) == scale}

    @property
    def best(self) -> BestStep | None:
        """The best step by the rule above, or None when no step after the base is eligible."""
        scored = [(step, s) for step, s in self.rounds.items() if s.get("clip_t") is not None]
        if not scored:
            return None
        start, tolerance = scored[0][1]["clip_t"], self.tolerance
        assert start is not None
        lost = {step for step, s in scored if s["clip_t"] < start - tolerance}  # type: ignore[operator]
        eligible = [(step, s) for step, s in scored if step > 0 and s.get("subject") is not None and step not in lost]
        if not eligible:
            return None
        ranked = sorted(eligible, key=lambda item: (-item[1]["subject"], item[0]))  # type: ignore[operator]
        step, scores = ranked[0]
        qualifying = tuple(step for step, _ in ranked)
        failing = frozenset(step for step in lost if step > 0)
        return BestStep(step, scores["subject"], scores["clip_t"], start, tolerance, qualifying, failing,  # type: ignore[arg-type]
                        self.unscored_from, self.rescaled, self.changed_at, self.earlier[-1][0] if self.earlier else None)


def best_step(events: Iterable[Event]) -> BestStep | None:
    """The best step by the rule above, or None when no step after the base is eligible."""
    rounds = ScoredRounds()
    for event in events:
        rounds.add(event)
    return rounds.best


def kept_best_steps(events_file: Path, steps: Iterable[int], tolerance: float | None = None) -> set[int]:
    """Of ``steps`` (a run's whole checkpoints), the one the rule ranks highest, and the one it ranked highest under each
    [evaluation] setting a resume changed from: a resume that scores on another scale must not delete the checkpoint
    the run named as the one to keep before it (the rule no longer compares it, but nothing else holds that model).
    ``tolerance``: the one a resume is about to train under, in place of the run's."""
    rounds = ScoredRounds()
    for event in scoring_events(events_file):
        rounds.add(event)
    if tolerance is not None:
        rounds.tolerance = tolerance
    best, have = rounds.best, set(steps)
    rankings = [*([best.qualifying] if best is not None else []), *rounds.earlier]
    return {next(s for s in ranking if s in have) for ranking in rankings if have.intersection(ranking)}


def best_step_of_run(events_file: Path) -> BestStep | None:
    """``best_step`` over a run's events.jsonl."""
    return best_step(scoring_events(events_file))


def scoring_events(events_file: Path, end: int | None = None) -> list[Event]:
    """The events of a run's events.jsonl the rule reads, up to byte ``end`` (None: all, past its index's length only:
    engine/evaluation/scored_lines.py), parsing only their lines (logs hold a line per step); none when it cannot be
    read."""
    events: list[Event] = []
    try:
        lines = scoring_lines(events_file) if end is None else marked_lines(Path(events_file), SCORING_MARKERS, end)
        for line in lines:
            try:
                events.append(event_from_dict(json.loads(line)))
            except (ValueError, TypeError):
                continue  # a line being written
    except OSError:
        return []
    return events
