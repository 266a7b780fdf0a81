"""Event sinks: where events go. The JSONL sink is always on for a run; others are optional."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Protocol

from engine.events import Event, event_from_dict


class Sink(Protocol):
    def __call__(self, event: Event) -> None: ...


class JsonlSink:
    """Appends each event as one JSON line and flushes, so readers see it at once."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", encoding="utf-8")
        self._lock = threading.Lock()
        if _cut_short(self.path):
            # An earlier attempt's last line, cut off (a full disk, a power loss): ended here, or this attempt's
            # first event would join it and every reader would drop both.
            self._file.write("\n")

    def __call__(self, event: Event) -> None:
        with self._lock:
            self._file.write(event.to_json() + "\n")
            self._file.flush()

    def close(self) -> None:
        try:
            self._file.close()
        except OSError:
            # The last lines, held back by a full disk, are lost either way: the run's own failure is what to report.
            pass


def _cut_short(path: Path) -> bool:
    with path.open("rb") as file:
        if file.seek(0, 2) == 0:
            return False
        file.seek(-1, 2)
        return file.read(1) != b"\n"


class Emitter:
    """Sends each event to every sink; a failing sink never stops training."""

    def __init__(self, sinks: Iterable[Sink | Callable[[Event], None]] = ()):
        self.sinks = list(sinks)

    def __call__(self, event: Event) -> None:
        for sink in self.sinks:
            try:
                sink(event)
            except Exception:  # noqa: BLE001 - a broken display must not kill a paid-for run
                pass


def read_events(path: Path) -> Iterator[Event]:
    """Every complete event in a JSONL file (a half-written last line is skipped)."""
    with Path(path).open(encoding="utf-8", errors="replace") as file:  # a damaged byte spoils its line, not the log
        for line in file:
            if not line.endswith("\n"):
                break
            try:
                yield event_from_dict(json.loads(line))
            except (ValueError, TypeError):
                continue
