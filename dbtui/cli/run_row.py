"""What `dbtui runs` knows of one run: its figures read once, then laid out as the table's cells or, for
``--json``, as one JSON object of plain values a script reads without parsing the table."""

from __future__ import annotations

import dataclasses
import math
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.runs.folder import RunFolder


@dataclasses.dataclass(frozen=True)
class RunRow:
    folder: RunFolder
    status: str
    step: int | None  # the step it got to: a killed run's log, not its lagging state file
    total_steps: int | None
    resumes_from: int | None  # where an unfinished run's `dbtui resume` goes on from (0: the start); None otherwise
    last_loss: float | None
    best_step: int | None
    updated: float  # when it last trained (RunFolder.last_active), seconds since the epoch
    starts_over: bool  # stopped or failed, no checkpoint saved: `dbtui resume` trains it from step 0
    step_cell: str  # the table's step cell: a crashed run's says where it resumes from
    paused: int | None = None  # the pid of a running run's trainer stopped by a signal (Ctrl-Z, kill -STOP)

    def cells(self) -> tuple[str, str, str, str, str, str]:
        """The run's path, status, step, last loss, best step and age, as the table shows them."""
        from dbtui.cli.printable import markup_safe

        from engine.runs.paused import PAUSED

        status = PAUSED if self.paused is not None else self.status
        return (markup_safe(self.folder.path), markup_safe(status), self.step_cell,
                f"{self.last_loss:.4f}" if self.last_loss is not None else "-",
                str(self.best_step) if self.best_step is not None else "-", _age(time.time() - self.updated))

    def as_json(self) -> dict[str, Any]:
        """The row's values for `dbtui runs --json`; a loss that is no number (NaN, inf) is null: JSON has none."""
        loss = self.last_loss if self.last_loss is not None and math.isfinite(self.last_loss) else None
        return {"path": str(self.folder.path), "name": self.folder.path.name, "status": self.status,
                "step": self.step, "total_steps": self.total_steps, "resumes_from": self.resumes_from,
                "last_loss": loss, "best_step": self.best_step,
                "updated": datetime.fromtimestamp(self.updated, timezone.utc).isoformat(timespec="seconds"),
                "age_seconds": max(0, round(time.time() - self.updated)), "starts_over": self.starts_over,
                "paused": self.paused is not None}


def read_row(folder: RunFolder) -> RunRow:
    """A run's row, read from its state file, or its events where that is missing."""
    from engine.evaluation.best import best_step_of_run
    from engine.runs.crash_point import crashed_step, resume_point
    from engine.runs.events_state import state_from_events
    from engine.runs.folder import ACTIVE, CRASHED
    from engine.runs.paused import paused_trainer

    state = folder.read_state() or state_from_events(folder)  # no state file: what its events tell
    best = best_step_of_run(folder.events)
    status = folder.status()
    point = resume_point(folder, state, status)
    # A killed trainer's state file lags its log: the loss of the step shown, not of the state's older one.
    loss = point.loss if point else state.last_loss if state else None
    # A crashed run's cell says where it resumes from, as before; a stopped or failed one without a checkpoint is
    # named under the table, its cell its step alone.
    starts_over = point is not None and status != CRASHED and not point.resumes_from
    in_cell = point if point and not starts_over else None
    total = state.total_steps if state and state.total_steps else None
    step = None if total is None else point.reached if point else state.step
    step_cell = "-" if total is None else crashed_step(in_cell, total) if in_cell else f"{step}/{total}"
    return RunRow(folder=folder, status=status, step=step, total_steps=total,
                  resumes_from=point.resumes_from if point else None, last_loss=loss,
                  best_step=best.step if best else None, updated=folder.last_active(), starts_over=starts_over,
                  step_cell=step_cell, paused=paused_trainer(folder) if status in ACTIVE else None)


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit} ago"
    return f"{seconds:.0f}s ago"
