"""How to keep the best step: its own checkpoint, the finished run's outputs, or the nearest of those.

The best step comes from ``engine/evaluation/best.py``; whether a model of that step still exists
depends on ``saving.every_n_steps`` and ``keep_last_n``. The wizard and the report both say what
to do from here, with the same words.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from dataclasses import dataclass

from engine.evaluation.best import BestStep, best_step_of_run
from engine.runs.checkpoints import complete_checkpoints
from engine.runs.folder import RunFolder, finished_by_events


@dataclass(frozen=True)
class Keep:
    best: BestStep
    step: int | None  # the model to keep: the best step, or the nearest one that exists; None when none does
    in_outputs: bool = False  # that step is a finished run's last: RUN/outputs/ already hold it, nothing to export

    @property
    def exact(self) -> bool:
        return self.step == self.best.step

    @property
    def export_step(self) -> int | None:
        """The kept checkpoint to export, when keeping the step needs an export."""
        return None if self.in_outputs else self.step

    def advice(self, run: str) -> str:
        """One sentence: what to run (or where to look) to keep the best step."""
        best = self.best.step
        if self.step is None:
            return (f"no checkpoint of this run was kept, so step {best} cannot be exported; set saving.every_n_steps "
                    "and saving.keep_last_n to keep candidates next time")
        if self.in_outputs:
            where = f"its model is already in {run}/outputs/"
            return (f"step {best} is the run's last: {where}" if self.exact else
                    f"step {best}'s checkpoint was not kept; the nearest step is the run's last, {self.step}: {where}")
        command = f"`dbtui export {shlex.quote(str(run))} --step {self.step}`"
        if self.exact:
            return f"keep it with {command}"
        return f"step {best}'s checkpoint was not kept (saving.keep_last_n); the nearest kept one is step {self.step}: {command}"


def nearest_step(steps: Iterable[int], step: int) -> int | None:
    """The step closest to ``step``, the earlier on a tie (it has trained less, so overfits less)."""
    return min(steps, key=lambda s: (abs(s - step), s), default=None)


def how_to_keep(best: BestStep, kept: Iterable[int], finished_at: int | None = None) -> Keep:
    """``kept``: the steps of the run's complete checkpoints; ``finished_at``: the last step of a run
    that finished (its outputs/ are that step's model), None for a stopped, failed or live run."""
    candidates = set(kept) | ({finished_at} if finished_at is not None else set())
    step = nearest_step(candidates, best.step)
    return Keep(best, step, in_outputs=step is not None and step == finished_at)


def keep_of_run(folder: RunFolder) -> Keep | None:
    """How to keep a run's best step, read from its folder (events and kept checkpoints); None when no
    step qualifies yet."""
    best = best_step_of_run(folder.events)
    if best is None:
        return None
    return how_to_keep(best, [step for step, _ in complete_checkpoints(folder)], finished_by_events(folder.events))
