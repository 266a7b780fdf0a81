"""The Training step's follower, run in its worker thread: a run's events, its loss history kept as they come, each
posted to the screen, and a trainer gone without a last word said in the attach list's own word."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from textual.message import Message

from dbtui.engine_facade import Engine
from dbtui.messages import EngineEvent, WorkFailed
from dbtui.screens.run_life import TrainerGone
from dbtui.widgets.loss_plot import LossHistory
from engine.evaluation.best import branch_point
from engine.events import RunFailed, RunFinished, StepEnded
from engine.runs.folder import CRASHED, RunFolder
from engine.runs.paused import PauseNotice


@dataclass
class AttemptStarted(Message):
    """The run's latest trainer was started at ``since`` (time.time()): what was written before is an earlier
    attempt's, its end history and its steps not this trainer's."""

    since: float


def follow_run(engine: Engine, folder: Path, history: LossHistory, post: Callable[[Message], object],
               cancelled: Callable[[], bool], resumed_since: float = 0.0) -> None:
    """``resumed_since``: when the wizard resumed the run (0.0: it did not), for a trainer yet to write its state."""
    last = None
    # A trainer stopped by a signal (Ctrl-Z, kill -STOP) is "running" by its state and lock: its pause is said.
    pause_notice = PauseNotice(RunFolder(folder), lambda event: post(EngineEvent(event)))

    def stop() -> bool:
        pause_notice()
        return cancelled()

    try:
        since = _attempt(engine, folder, resumed_since, post, 0.0)
        for event in engine.follow_run(folder, stop=stop):
            if isinstance(event, StepEnded):
                history.append(event.step, event.loss, event.smoothed_loss)
            elif (point := branch_point(event)) is not None:
                history.forget_after(point)
            elif isinstance(event, (RunFinished, RunFailed)):
                # Read again as an end comes: a resume started meanwhile from another terminal makes it history. A
                # trainer's own end is written before its state, which then still names that trainer's start.
                since = _attempt(engine, folder, resumed_since, post, since)
            post(EngineEvent(event))
            last = event
        if cancelled() or (isinstance(last, (RunFinished, RunFailed)) and last.time >= since):
            return
        # The events stop when the trainer is gone (a resumed one killed in its set-up stops at the earlier attempt's
        # end): say so in the attach list's own word.
        status = engine.run_status(folder)
        if status == CRASHED:
            post(TrainerGone(status))
    except Exception as error:  # noqa: BLE001 - shown to the user
        post(WorkFailed("Following the run", str(error)))


def _attempt(engine: Engine, folder: Path, resumed_since: float, post: Callable[[Message], object],
             known: float) -> float:
    """When the run's latest trainer was started, told to the screen where it is later than ``known``."""
    since = max(resumed_since, engine.trainer_started(folder), known)
    if since > known:
        post(AttemptStarted(since))
    return since
