"""Typed events: the only way the engine reports progress.

Each event is a frozen dataclass. ``to_json`` gives the wire format written one object a line
to ``RUN_DIR/events.jsonl`` (documented in the README): every object has ``"event"`` (the
type name in snake_case), ``"time"`` (Unix seconds) and the event's fields.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True, kw_only=True)
class Event:
    """Base of all events."""

    time: float = field(default_factory=time.time)
    registry: ClassVar[dict[str, type[Event]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        Event.registry[_snake(cls.__name__)] = cls

    @property
    def kind(self) -> str:
        return _snake(type(self).__name__)

    def to_dict(self) -> dict[str, Any]:
        return {"event": self.kind, **dataclasses.asdict(self)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), default=str, allow_nan=True)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def event_from_dict(data: dict[str, Any]) -> Event:
    """Rebuild an event from its JSON object; unknown kinds and extra fields are tolerated."""
    data = dict(data)
    cls = Event.registry.get(data.pop("event", ""), UnknownEvent)
    names = {f.name for f in dataclasses.fields(cls)}
    if cls is UnknownEvent:
        return UnknownEvent(time=data.get("time", 0.0), data=data)
    return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True, kw_only=True)
class UnknownEvent(Event):
    """An event written by a newer dbtui."""

    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class RunStarted(Event):
    run_dir: str
    profile: dict[str, Any]
    hardware: dict[str, Any]
    versions: dict[str, str]
    total_steps: int
    resumed_from_step: int = 0
    num_processes: int = 1


@dataclass(frozen=True, kw_only=True)
class PhaseStarted(Event):
    # "load_model", "class_images", "caching", "load_text_encoders", "caching_text", "training", "sampling",
    # "scoring", "export", "checkpoint"
    phase: str
    total: int | None = None
    description: str = ""


@dataclass(frozen=True, kw_only=True)
class PhaseProgress(Event):
    phase: str
    done: int
    total: int | None = None


@dataclass(frozen=True, kw_only=True)
class PhaseFinished(Event):
    phase: str
    seconds: float


@dataclass(frozen=True, kw_only=True)
class StepEnded(Event):
    step: int
    total_steps: int
    epoch: int
    loss: float
    smoothed_loss: float
    lr: float
    it_per_s: float
    eta_s: float | None
    vram_allocated_peak_mb: float | None = None
    vram_reserved_peak_mb: float | None = None
    rss_mb: float | None = None
    # fp16's loss scaler found an overflow and the weights did not move (it lowers its scale and
    # goes on); the optimizer's state exists only from the first step taken.
    optimizer_skipped: bool = False


@dataclass(frozen=True, kw_only=True)
class SampleSaved(Event):
    step: int
    paths: list[str]
    grid: str | None = None


@dataclass(frozen=True, kw_only=True)
class SamplesScored(Event):
    """The scores of one evaluation round (engine/evaluation); step 0 is the base model.

    ``scores``: ``dino`` and ``clip_i`` (subject fidelity: generated vs instance images),
    ``subject`` (their mean), ``clip_t`` (prompt fidelity, the prompt without the identifier) and
    ``class_drift`` (1 − DINO similarity of identifier-free prompts' images to the base model's);
    a score that does not apply is null. ``prompts``: one object per prompt with ``prompt``,
    ``scored_prompt`` (the text CLIP-T read) and the same scores. ``settings``: what the scores were
    measured with (engine/evaluation/rounds.py ``round_settings``); the best-step rule compares only
    rounds of the newest base round's settings (null: a round of an older dbtui).
    """

    step: int
    scores: dict[str, float | None]
    prompts: list[dict[str, Any]] = field(default_factory=list)
    folder: str | None = None  # the round's images
    settings: dict[str, Any] | None = None


@dataclass(frozen=True, kw_only=True)
class CheckpointSaved(Event):
    step: int
    path: str
    seconds: float = 0.0


@dataclass(frozen=True, kw_only=True)
class Warning(Event):  # noqa: A001 - the event's public name in the JSONL is "warning"
    message: str
    advice: str = ""


@dataclass(frozen=True, kw_only=True)
class RunFinished(Event):
    step: int
    outputs: dict[str, str]
    seconds: float
    status: str = "finished"  # "finished" or "stopped"


@dataclass(frozen=True, kw_only=True)
class RunFailed(Event):
    reason: str
    advice: str = ""
    step: int | None = None
