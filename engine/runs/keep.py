"""How to keep the best step: its own checkpoint, the finished run's outputs, or the nearest of those.

The best step comes from ``engine/evaluation/best.py``; whether a model of that step still exists
depends on ``saving.every_n_steps`` and ``keep_last_n``. The wizard and the report both say what
to do from here, with the same words.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from engine.errors import DbtuiError
from engine.evaluation.best import BestStep, best_step_of_run, scoring_events
from engine.events import (CheckpointSaved, CheckpointsRotated, RunStarted, SamplesScored, event_from_dict,
                           marked_lines_from_the_end)
from engine.runs.checkpoints import checked_checkpoints
from engine.runs.folder import RunFolder
from engine.runs.last_events import finished_by_events
from engine.runs.score_words import track_of_run, uncompared_said
from engine.training.preview_schedule import preview_scheduled

# Why the best step has no checkpoint: one was saved after its round and saving.keep_last_n's rotation deleted it, or it
# is gone (deleted or moved by hand), or either (an earlier version's rotation logged nothing); its round was asked for
# by hand with no save; or it was scheduled between checkpoints.
Unkept = Literal["rotated", "gone", "gone_or_rotated", "asked", "between"]


@dataclass(frozen=True)
class Keep:
    best: BestStep
    step: int | None  # the model to keep: the best step, the best kept one that qualifies, or the nearest kept one
    in_outputs: bool = False  # that step is a finished run's last: RUN/outputs/ already hold it, nothing to export
    rejected: bool = False  # that step was scored and the best-step rule rejected it (no kept step qualifies)
    damaged: tuple[int, ...] = ()  # kept checkpoints left out because damage_of found them damaged (an export would fail)
    unkept: Unkept = "between"  # why the best step has no checkpoint (``unkept_why``), where it has none

    @property
    def exact(self) -> bool:
        return self.step == self.best.step

    @property
    def export_step(self) -> int | None:
        """The kept checkpoint to export, when keeping the step needs an export."""
        return None if self.in_outputs else self.step

    @property
    def choice(self) -> str:
        """Which step this is, in a few words: "best", "best kept that qualifies", "nearest to best N"…"""
        if self.exact:
            return "best"
        if self.step in self.best.qualifying:
            return "best kept that qualifies"
        return f"nearest to best {self.best.step}" + (", did not qualify" if self.rejected else "")

    def advice(self, run: str) -> str:
        """One sentence: what to run (or where to look) to keep the best step."""
        best = self.best.step
        if self.step is None:
            if best in self.damaged:
                return f"step {best}'s checkpoint is damaged and no other checkpoint of this run is whole, so it cannot be exported"
            # Also where checkpoints/ was deleted or moved by hand: a setting to change alone sent the user wrong.
            return (f"no checkpoint of this run was kept, so step {best} cannot be exported; put back any moved out of "
                    f"{run}/checkpoints/, or set saving.every_n_steps and saving.keep_last_n to keep candidates next time")
        if self.exact:
            how = "keep it with" if not self.in_outputs else f"step {best} is the run's last:"
            return f"{how} {self._where(run)}"
        if best in self.damaged:
            said = f"step {best}'s checkpoint is damaged (`dbtui export` refuses it)"
        elif self.unkept == "rotated":
            # Kept while it was the best: another step was then, and the scores or [evaluation] settings since chose it.
            said = (f"step {best}'s checkpoint was deleted by saving.keep_last_n's rotation, when another step was the "
                    "best (a larger saving.keep_last_n keeps more candidates)")
        elif self.unkept in ("gone", "gone_or_rotated"):
            # Its round was on the saving schedule: a setting to change, as the words below say, would not have kept it.
            how = ("deleted or moved out: put it back" if self.unkept == "gone" else
                   "deleted, by hand or by an older version's rotation; if it was moved out, put it back")
            said = f"step {best}'s checkpoint was saved but is gone from {run}/checkpoints/ ({how} there to export it)"
        elif self.unkept == "asked":
            # No setting saves at a round asked for by hand: a save asked for with it does (both are read at one step).
            said = (f"step {best} has no checkpoint (its round was asked for by hand, `dbtui sample` or the dashboard's p, "
                    "with no save: `dbtui save` sent with `dbtui sample`, or c with p, saves one at such a round, as both "
                    "act at the same step boundary; or it was deleted)")
        else:
            # Not keep_last_n's doing, as it said: the rotation keeps the best step's checkpoint. A round scored between
            # checkpoints never had one, or it was deleted by hand.
            said = (f"step {best} has no checkpoint (its round was scored between checkpoints: saving.every_n_steps equal to "
                    "sampling.every_n_steps saves one at each round; or it was deleted)")
        last = "the run's last, " if self.in_outputs else ""
        if self.step in self.best.qualifying:
            return f"{said}; the best kept step that qualifies is {last}step {self.step}: {self._where(run)}"
        if self.rejected:
            return (f"{said}, and no kept step qualifies: the nearest kept one, {last}step {self.step}, lost too much prompt "
                    f"fidelity (CLIP-T more than {self.best.tolerance:g} below the start {self.best.start_clip_t:.3f}), "
                    f"so it is likely overfit; only if it looks right: {self._where(run)}")
        return f"{said}; the nearest kept one is {last}step {self.step}: {self._where(run)}"

    def _where(self, run: str) -> str:
        if self.in_outputs:
            return f"its model is already in {run}/outputs/"
        return f"`dbtui export {shlex.quote(str(run))} --step {self.step}`"


def nearest_step(steps: Iterable[int], step: int) -> int | None:
    """The step closest to ``step``, the earlier on a tie (it has trained less, so overfits less)."""
    return min(steps, key=lambda s: (abs(s - step), s), default=None)


def how_to_keep(best: BestStep, kept: Iterable[int], finished_at: int | None = None, damaged: Iterable[int] = (),
                events: Path | None = None) -> Keep:
    """``kept``: the steps of the run's whole checkpoints; ``finished_at``: the last step of a run
    that finished (its outputs/ are that step's model), None for a stopped, failed or live run;
    ``damaged``: the steps of its damaged checkpoints, which the advice names but never offers;
    ``events``: the run's events.jsonl, which says why the best step has none (``unkept_why``; None: between checkpoints).

    The best step when it is kept, else the best kept step the rule accepts, else the nearest kept one."""
    candidates = set(kept) | ({finished_at} if finished_at is not None else set())
    step = next((s for s in best.qualifying or (best.step,) if s in candidates), None)
    if step is None:
        step = nearest_step(candidates, best.step)
    in_outputs = step is not None and step == finished_at
    # Read only where the best step has no model: it may scan a long run's log.
    unkept = unkept_why(events, best.step) if events is not None and step != best.step else "between"
    return Keep(best, step, in_outputs=in_outputs, rejected=step in best.failing, damaged=tuple(damaged), unkept=unkept)


def unkept_why(events: Path, step: int) -> Unkept:
    """Why ``step``, the best, has no checkpoint: where one was saved after its round, "rotated" where the rotation
    logged its deletion (CheckpointsRotated), "gone" where every attempt since its save logs the rotation's deletions
    (RunStarted.rotation_logged, this version's: by hand, then), else "gone_or_rotated" (an earlier version's rotation
    logged none); where none was, "asked" where its round was asked for by hand (``asked_round``), else "between"
    (between checkpoints)."""
    deleted = _deleted_after_save(events, step)
    if deleted is not None:
        return deleted
    return "asked" if asked_round(events, step) else "between"


def _deleted_after_save(events: Path, step: int) -> Unkept | None:
    """Read from the end of ``events`` back to the latest of the step's scored round and its saved checkpoint (a round
    comes before the checkpoint of its step: Trainer.after_step, then the supervisor's save): None where the round is
    the later, else how the checkpoint went. An attempt that logged no rotation may be an earlier version's."""
    rotated, logged, every_attempt_logged, saved = False, False, True, False
    markers = (b'"checkpoint_saved"', b'"samples_scored"', b'"checkpoints_rotated"', b'"run_started"')
    try:
        for line in marked_lines_from_the_end(events, markers):
            try:
                event = event_from_dict(json.loads(line))
            except (ValueError, TypeError):
                continue  # a line being written
            if isinstance(event, CheckpointsRotated):
                logged = True
                rotated |= not saved and step in event.steps
            elif isinstance(event, RunStarted):
                # Said at the attempt's start, as a rotation that deleted nothing logs no event to tell it by
                logged |= event.rotation_logged
                if saved:  # the attempt that saved it, read whole
                    break
                every_attempt_logged &= logged
                logged = False
            elif isinstance(event, (CheckpointSaved, SamplesScored)) and event.step == step and not saved:
                if isinstance(event, SamplesScored):
                    return None
                saved = True
                if logged or not every_attempt_logged:
                    break  # known already: the rest of its attempt (a long run's log) is not read
    except OSError:
        return None
    if not saved:
        return None
    return "rotated" if rotated else "gone" if every_attempt_logged and logged else "gone_or_rotated"


def asked_round(events: Path, step: int) -> bool:
    """Whether the scored round of ``step`` was asked for by hand (`dbtui sample`, the dashboard's p): off the schedule
    of the attempt that scored it (sampling.every_n_steps, else saving.every_n_steps, as Trainer.after_step rounds) and
    not its last step. Settings not read count as scheduled: the advice then stays the setting's."""
    asked, started = False, None
    for event in scoring_events(events):
        if isinstance(event, RunStarted):
            started = event
        elif isinstance(event, SamplesScored) and event.step == step and started is not None:
            asked = _off_schedule(started, step)  # the latest attempt's round of that step is the one scored
    return asked


def _off_schedule(started: RunStarted, step: int) -> bool:
    sampling, saving = started.profile.get("sampling"), started.profile.get("saving")
    if not isinstance(sampling, dict) or not isinstance(saving, dict) or "every_n_steps" not in saving:
        return False
    every = [sampling.get("every_n_steps"), saving.get("every_n_steps")]
    if not all(value is None or isinstance(value, int) and value > 0 for value in every):
        return False  # a profile this version never wrote: taken as scheduled
    return not preview_scheduled(step, started.total_steps, *every) and step != started.total_steps


def keep_of_run(folder: RunFolder) -> Keep | None:
    """How to keep a run's best step, read from its folder (events and kept checkpoints, checked for damage as an
    export checks them); None when no step qualifies yet."""
    best = best_step_of_run(folder.events)
    if best is None:
        return None
    whole, damaged = checked_checkpoints(folder)
    return how_to_keep(best, whole, finished_by_events(folder.events), damaged, folder.events)


def best_elsewhere(folder: RunFolder, exported: int) -> str | None:
    """One line naming the run's best-scored step and the command that exports it, or the best kept step that qualifies
    where the best has no checkpoint, when that is not ``exported`` (the latest, which `dbtui export RUN` writes by
    default); else None. Said of the best kept step too: the latest exported with no word of a better kept one."""
    keep = keep_of_run(folder)
    if keep is None or keep.export_step not in keep.best.qualifying or keep.export_step == exported:
        return None
    # As attach and the report say it: the best of a resume that turned scoring off read as better than the unscored steps.
    uncompared = uncompared_said(keep.best)
    return (f"exported step {exported}, the latest kept; the best-scored is {keep.best.describe()}: "
            f"{keep.advice(str(folder.path))}" + (f"; {uncompared}" if uncompared else ""))


def best_kept_said(folder: RunFolder, asked: int) -> str:
    """Where ``asked`` has no checkpoint: "; the best-scored step is N: `dbtui export RUN --step N`" (or the best kept
    step that qualifies), as `dbtui runs`, attach and the report name it; "" where none qualifies or it is ``asked``."""
    keep = keep_of_run(folder)
    if keep is None or keep.step is None or keep.step == asked or keep.step not in keep.best.qualifying:
        return ""
    what = "the best-scored step" if keep.exact else "the best kept step that qualifies"
    return f"; {what} is {keep.step}: `dbtui export {shlex.quote(str(folder.path))} --step {keep.step}`"


class NoBestStepError(DbtuiError):
    """`dbtui export RUN --step best` of a run whose best-scored step has no model kept, or that has no best step."""


def best_step_to_export(folder: RunFolder) -> int:
    """The step `dbtui export RUN --step best` writes: the best-scored one, where its checkpoint (or the finished run's
    outputs) holds it; else refused with the words `dbtui export RUN` names the best kept step that qualifies with, or
    with why no step is the best."""
    keep = keep_of_run(folder)
    run = str(folder.path)
    if keep is None:
        why = track_of_run(folder.events).why_none(ended=not folder.is_live())
        raise NoBestStepError(f"{run} has no best-scored step to export: " + (why or (
            "no round of it was scored ([evaluation] enabled = true scores each preview round and names the best "
            "step); give --step N, a kept checkpoint's step, or leave --step out for the latest")))
    if keep.exact:
        return keep.best.step
    uncompared = uncompared_said(keep.best)
    raise NoBestStepError(f"the best-scored is {keep.best.describe()}, and {keep.advice(run)}"
                          + (f"; {uncompared}" if uncompared else ""))
