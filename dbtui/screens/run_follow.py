"""The Training step's follower, run in its worker thread: a run's events, its loss history kept as they come, each
posted to the screen, and a trainer gone without a last word said in the attach list's own word."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from textual.message import Message

from dbtui.engine_facade import Engine
from dbtui.messages import EngineEvent, WorkFailed
from dbtui.screens.run_life import TrainerGone
from dbtui.widgets.loss_plot import LossHistory
from engine.evaluation.best import branch_point
from engine.events import RunFailed, RunFinished, StepEnded
from engine.runs.folder import CRASHED


def follow_run(engine: Engine, folder: Path, history: LossHistory, post: Callable[[Message], object],
               cancelled: Callable[[], bool], earlier: Callable[[RunFinished | RunFailed], bool]) -> None:
    """``earlier``: whether an end is an earlier attempt's (a run resumed here), which is no last word of its trainer."""
    last = None
    try:
        for event in engine.follow_run(folder, stop=cancelled):
            if isinstance(event, StepEnded):
                history.append(event.step, event.loss, event.smoothed_loss)
            elif (point := branch_point(event)) is not None:
                history.forget_after(point)
            post(EngineEvent(event))
            last = event
        if cancelled() or (isinstance(last, (RunFinished, RunFailed)) and not earlier(last)):
            return
        # The events stop when the trainer is gone (a resumed one killed in its set-up stops at the earlier attempt's
        # end): say so in the attach list's own word.
        status = engine.run_status(folder)
        if status == CRASHED:
            post(TrainerGone(status))
    except Exception as error:  # noqa: BLE001 - shown to the user
        post(WorkFailed("Following the run", str(error)))
