"""Typed events: the only way the engine reports progress.

Each event is a frozen dataclass. ``to_json`` gives the wire format written one object a line
to ``RUN_DIR/events.jsonl`` (documented in the README): every object has ``"event"`` (the
type name in snake_case), ``"time"`` (Unix seconds) and the event's fields.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, get_type_hints

# Annotated markers, made into pydantic's checks when a line is read (``_field_types``): pydantic is not imported before
# then, so the wizard's first screen, which imports these events, stays light. A time and a duration are finite and not
# negative, and a time is one a date can show (up to 9999-12-31): a damaged line's NaN or 1e308 otherwise fails where
# it is formatted (int(nan), datetime.fromtimestamp). An unchecked field is read as it is written (see SamplesScored).
Timestamp = Annotated[float, "timestamp"]
Seconds = Annotated[float, "seconds"]
UNCHECKED = "unchecked"
_LATEST_TIME = 253402214400.0  # 9999-12-31
LOG_BLOCK = 1 << 20  # bytes of an events log read at once (marked_lines)


@dataclass(frozen=True, kw_only=True)
class Event:
    """Base of all events."""

    time: Timestamp = field(default_factory=time.time)
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


Emit = Callable[[Event], None]  # where the engine sends its events: a sink, or a caller's own function


def marked_lines(path: Path, markers: tuple[bytes, ...], end: int | None = None, start: int = 0) -> Iterator[bytes]:
    """The lines of an events log from byte ``start`` (a line's start) up to byte ``end`` (None: all) that hold one of
    ``markers``, read a block at a time: a long run's log holds a line a step, hundreds of MB, of which its readers want
    a few kinds. Raises OSError."""
    with Path(path).open("rb") as file:
        file.seek(start)
        rest, left = b"", None if end is None else end - start
        while left is None or left > 0:
            chunk = file.read(LOG_BLOCK if left is None else min(LOG_BLOCK, left))
            if not chunk:
                break
            left = None if left is None else left - len(chunk)
            data = rest + chunk
            cut = data.rfind(b"\n") + 1
            whole, rest = data[:cut], data[cut:]
            yield from _lines_holding(whole, markers)
        if any(marker in rest for marker in markers):  # a last line without its newline: its reader judges it
            yield rest


def marked_lines_from_the_end(path: Path, markers: tuple[bytes, ...]) -> Iterator[bytes]:
    """The lines of an events log that hold one of ``markers``, last first, read a block at a time from the end: for
    readers of the last such line, which the end of a long log holds (the last line, maybe cut off, included). Raises
    OSError."""
    for whole in _blocks_from_the_end(path):
        yield from reversed(list(_lines_holding(whole + b"\n", markers)))


def last_lines(path: Path, count: int, start: int = 0) -> list[str]:
    """The ``count`` last lines (as ``str.splitlines`` parts them: a progress bar's "\r" too) of a log from byte
    ``start`` (a line's start) on, read a block at a time from the end: a run's trainer log may hold hundreds of MB, of
    which a failed trainer's last words are wanted. Raises OSError."""
    lines: list[str] = []
    for whole in _blocks_from_the_end(path, start):
        lines = whole.decode(errors="replace").splitlines() + lines
        if len(lines) >= count:  # a block begins at a line's start: those before it cannot change the last lines
            break
    return lines[-count:]


def _blocks_from_the_end(path: Path, start: int = 0) -> Iterator[bytes]:
    """The bytes of a file from ``start`` to its end, LOG_BLOCK or so at a time, last first, each cut at a line's start.
    Raises OSError."""
    with Path(path).open("rb") as file:
        at, rest = file.seek(0, 2), b""
        while at > start:
            size = min(LOG_BLOCK, at - start)
            at -= size
            file.seek(at)
            data = file.read(size) + rest
            # The block's first line may begin in the block before: kept until that one is read (all of it, no newline).
            cut = (data.find(b"\n") + 1 or len(data)) if at > start else 0
            rest = data[:cut]
            yield data[cut:]


def _lines_holding(whole: bytes, markers: tuple[bytes, ...]) -> Iterator[bytes]:
    """The lines of ``whole`` (whole lines) that hold a marker, in order, found by searching rather than splitting."""
    starts: set[int] = set()
    for marker in markers:
        at = whole.find(marker)
        while at >= 0:
            starts.add(whole.rfind(b"\n", 0, at) + 1)
            at = whole.find(marker, whole.find(b"\n", at))
    for start in sorted(starts):
        yield whole[start:whole.find(b"\n", start)]


@functools.cache  # asked for every event written or read: a 300,000-line log spent most of its replay here
def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def event_from_dict(data: dict[str, Any]) -> Event:
    """Rebuild an event from its JSON object; unknown kinds and extra fields are tolerated. A field of the wrong JSON
    type (another writer's, a hand edit's: no text for a number) raises ValueError (pydantic's ValidationError):
    readers skip the line as they skip one that is not JSON."""
    if not isinstance(data, dict):
        raise ValueError(f"an event is a JSON object, not {type(data).__name__}")
    data = dict(data)
    cls = Event.registry.get(data.pop("event", ""), UnknownEvent)
    if cls is UnknownEvent:
        data = {"time": data.get("time", 0.0), "data": data}
    fields = _field_types(cls)
    return cls(**{k: fields[k](v) for k, v in data.items() if k in fields})


@functools.cache
def _field_types(cls: type[Event]) -> dict[str, Callable[[Any], Any]]:
    """Each field's check of a value read: pydantic's, strict (JSON's own types only: "3" is no step, but a whole
    number is a float, as JSON writes 1.0 as 1)."""
    from pydantic import Field, TypeAdapter

    bounds = {"timestamp": Field(ge=0, le=_LATEST_TIME, allow_inf_nan=False), "seconds": Field(ge=0, allow_inf_nan=False)}
    hints = get_type_hints(cls, include_extras=True)
    checks: dict[str, Callable[[Any], Any]] = {}
    for name in (f.name for f in dataclasses.fields(cls)):
        marks = getattr(hints[name], "__metadata__", ())
        if UNCHECKED in marks:
            checks[name] = _as_read
            continue
        read = Annotated[hints[name].__origin__, *(bounds[mark] for mark in marks)] if marks else hints[name]
        checks[name] = functools.partial(TypeAdapter(read).validate_python, strict=True)
    return checks


def _as_read(value: Any) -> Any:
    return value


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
    # This attempt logs each checkpoint its rotation deletes (checkpoints_rotated): one it never logged went by hand.
    # False where read from an older version's log, whose rotation logged none (engine/runs/keep.py).
    rotation_logged: bool = False


@dataclass(frozen=True, kw_only=True)
class PhaseStarted(Event):
    # "checking_images" (images decoded before the model loads, and where latents are not cached those generated
    # since), "load_model", "class_images", "caching", "load_text_encoders",
    # "caching_text", "training", "sampling", "scoring", "export", "checkpoint"
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
    seconds: Seconds
    stopped: bool = False  # ended by a stop request before its work was all done


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
    prompts: list[str] = field(default_factory=list)  # the grid's rows' prompts, in order; none in an older dbtui's log


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
    # Not checked here: the best-step rule reads a damaged round's numbers and prompt rows one by one (scored_round).
    scores: Annotated[dict[str, float | None], UNCHECKED]
    prompts: Annotated[list[dict[str, Any]], UNCHECKED] = field(default_factory=list)
    folder: str | None = None  # the round's images
    settings: dict[str, Any] | None = None


@dataclass(frozen=True, kw_only=True)
class CheckpointSaved(Event):
    step: int
    path: str
    seconds: Seconds = 0.0


@dataclass(frozen=True, kw_only=True)
class CheckpointsRotated(Event):
    """The checkpoints saving.keep_last_n's rotation deleted (engine/runs/rotation.py): the best step's advice tells one
    it deleted, which cannot be put back, from one deleted or moved out by hand (engine/runs/keep.py)."""

    steps: list[int]
    keep_last_n: int

    def said(self) -> str:
        """In words, the same in the terminal and the wizard's log."""
        which = f"checkpoint{'s' if len(self.steps) > 1 else ''} of step{'s' if len(self.steps) > 1 else ''} {', '.join(map(str, self.steps))}"
        return f"deleted the {which} (saving.keep_last_n = {self.keep_last_n})"


@dataclass(frozen=True, kw_only=True)
class Warning(Event):  # noqa: A001 - the event's public name in the JSONL is "warning"
    message: str
    advice: str = ""


@dataclass(frozen=True, kw_only=True)
class RunFinished(Event):
    step: int
    outputs: dict[str, str]
    seconds: Seconds
    status: str = "finished"  # "finished" or "stopped"


@dataclass(frozen=True, kw_only=True)
class RunFailed(Event):
    reason: str
    advice: str = ""
    step: int | None = None
