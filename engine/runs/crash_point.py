"""Where a crashed run got to and where its resume goes on from, for `dbtui runs`: its state file is rewritten once a
second at most, so a trainer killed (kill -9, out of memory) leaves it steps behind the events log and the checkpoints."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from engine.runs.folder import ACTIVE, CRASHED, RunFolder, RunState
from engine.runs.last_events import last_step_ended


@dataclass(frozen=True)
class CrashPoint:
    reached: int  # the last step this attempt trained
    resumes_from: int | None  # the latest complete checkpoint's step, which `dbtui resume` loads; 0: from the start;
    # None: the checkpoints it saved are gone (deleted by hand), and its resume is refused until they are put back
    loss: float | None  # the loss of step ``reached``, not of the state file's older step


def crashed_step(point: CrashPoint, total_steps: int) -> str:
    """An unfinished run's step figure: where it got to, and the step its resume goes on from (none where it is refused)."""
    if point.resumes_from is None:
        return f"{point.reached}/{total_steps}"
    return f"{point.reached}/{total_steps} · resumes from {point.resumes_from or 'the start'}"


def resume_point(folder: RunFolder, state: RunState | None, status: str) -> CrashPoint | None:
    """Where a run that ended unfinished got to and resumes from, for a crashed run (its state file lags) and for a
    stopped or failed one whose latest checkpoint is older than its last step (a second Ctrl-C cut the stop's save
    short), or that saved none (out of memory or a NaN loss before the first save), which `dbtui resume` trains from
    step 0. One whose saved checkpoints are gone, or whose latest one is damaged, is listed at its step alone (a
    crashed one with ``resumes_from`` None, at the step its log reached): its resume is refused
    (resume_point.check_none_lost, launcher._check_latest)."""
    from engine.runs.resume_point import last_saved_step

    if state is None or status in ACTIVE or status == "finished":
        return None
    point = crash_point(folder, state)
    if point.resumes_from and latest_damaged(folder):  # `dbtui resume` refuses it, naming the newest whole one
        return dataclasses.replace(point, resumes_from=None) if status == CRASHED else None
    if point.resumes_from == 0 and last_saved_step(folder) is not None:
        return dataclasses.replace(point, resumes_from=None) if status == CRASHED else None
    starts_over = point.resumes_from == 0 < point.reached  # none saved: `dbtui resume` trains it from step 0
    return point if status == CRASHED or 0 < point.resumes_from < point.reached or starts_over else None


def latest_damaged(folder: RunFolder) -> bool:
    """Whether the run's latest complete checkpoint has files cut short or missing (a copy cut short, a disk error)."""
    from engine.runs.checkpoints import complete_checkpoints, damage_if_still_there

    done = complete_checkpoints(folder)
    return bool(done) and damage_if_still_there(done[-1][1]) is not None


def crash_point(folder: RunFolder, state: RunState) -> CrashPoint:
    """Read from the cheap sources: the log's last step_ended line (read from the end; one of this attempt's, not an
    earlier trainer's where this one was killed in its set-up) and the checkpoints' manifests."""
    from engine.runs.checkpoints import complete_checkpoints

    done = complete_checkpoints(folder)
    last = last_step_ended(folder.events)
    if last is None or last.time < state.started or last.step <= state.step:
        return CrashPoint(state.step, done[-1][0] if done else 0, state.last_loss)
    return CrashPoint(last.step, done[-1][0] if done else 0, last.loss)

