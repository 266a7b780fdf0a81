"""App-wide messages: what workers post back to the screens (workers never touch widgets)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual.message import Message

from engine.events import Event, PhaseProgress, StepEnded


@dataclass
class EngineEvent(Message):
    """An event from the engine (training, conversion, dataset check, fit test)."""

    event: Event

    def can_replace(self, message: Message) -> bool:
        # Progress arrives faster than the screen redraws: keep only the newest of a kind.
        # (The loss curve keeps every step in a LossHistory that the worker appends to.)
        if not isinstance(message, EngineEvent):
            return False
        new, old = self.event, message.event
        if isinstance(new, StepEnded):
            return isinstance(old, StepEnded)
        if isinstance(new, PhaseProgress):
            return isinstance(old, PhaseProgress) and old.phase == new.phase
        return False


@dataclass
class WorkDone(Message):
    """A worker finished; ``what`` names the job, ``result`` is what the engine returned."""

    what: str
    result: Any = None


@dataclass
class WorkFailed(Message):
    """A worker's engine call raised; ``message`` is shown to the user. ``about``: what it was asked of (a model
    check's source), where a later call may have replaced it."""

    what: str
    message: str
    about: str | None = None


@dataclass
class ResumeOffered(Message):
    """The run folder already has checkpoints: the user chooses to resume or not."""

    profile: Any
    detail: str


# The worker group that starts a run: Ctrl+Q waits for it, since the trainer it starts outlives the app.
RUN_START = "run"


@dataclass
class RunAttached(Message):
    """The dashboard now follows the run in ``folder``, whose trainer the wizard started at ``since`` (time.time())."""

    folder: Path
    since: float


@dataclass
class HardwareKnown(Message, bubble=False):
    """The app's hardware probe answered (in ``Session.hardware`` now): sent to every screen, since one that asked
    may be gone (Next does not wait for the probe) and one that judges the settings by this GPU may have come since.
    Not bubbling: the app sends it, to each screen."""

    report: Any  # engine_facade.HardwareReport


@dataclass
class HardwareFailed(Message, bubble=False):
    """The app's hardware probe raised: ``reason`` is shown on the hardware step, whose loading indicator ends.
    Sent to every screen, as HardwareKnown is."""

    reason: str
