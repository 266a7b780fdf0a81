"""Watching a run: replay events.jsonl from the start, then follow it as it grows."""

from __future__ import annotations

import json
import os
import shlex
import time
from collections.abc import Callable, Iterator
from dataclasses import replace

from engine.events import CheckpointSaved, Event, RunFinished, RunStarted, SampleSaved, SamplesScored, event_from_dict
from engine.runs.folder import RunFolder, RunFolderError, unreadable

END_KINDS = {"run_finished", "run_failed"}
READ_BLOCK = 1 << 20  # bytes of the log read at once


class EventFollower:
    """Reads a run's events from byte ``start``; ``position`` is the byte after the last event
    handed out, so a watcher interrupted between events can go on from there without a replay."""

    def __init__(self, folder: RunFolder, start: int = 0, *, lost_log_ends: bool = False) -> None:
        self.folder = folder
        self.position = start
        self.lost_log_ends = lost_log_ends  # a log deleted under a live trainer raises EventLogGone, not silence
        self.moved = MovedRun(folder)

    def events(
        self, *, poll: float = 0.2, stop: Callable[[], bool] = lambda: False, follow: bool = True
    ) -> Iterator[Event]:
        """Every event from ``position`` on, then new ones as they come, until the run ends or
        ``stop()``. A resumed run appends to the same log: an end event that more events follow,
        or that a live trainer follows, is history, not the end.

        Ends too when the trainer process is gone without a last event (killed), or, with
        ``follow=False``, at the end of what is written now.
        """
        last_pass = False
        while True:
            lines = self._complete_lines()
            for index, (line, end) in enumerate(lines):
                self.position = end
                event = _parse(line)
                if event is None:
                    continue
                yield self.moved(event)
                later = index + 1 < len(lines) or self._size() > self.position
                if event.kind in END_KINDS and not later and not (follow and self.folder.is_live()):
                    return
            if (last_pass or not follow) and not lines:  # read to the end of what is written
                return
            if stop():
                last_pass = True  # read once more: the trainer may have written its last lines just now
                continue
            if not lines:
                # No trainer alive (killed, or a log cut short or damaged so that its last event never comes):
                # nothing more will be written.
                if not self.folder.is_live():
                    last_pass = True
                    continue
                if self.lost_log_ends and self._log_deleted():
                    raise EventLogGone(log_gone(self.folder))
                time.sleep(poll)

    def _log_deleted(self) -> bool:
        """The log is missing where the trainer has written it: it read some, or has trained a step (its state says
        "running"; it opens the log before that, in its set-up)."""
        if self.folder.events.exists():
            return False
        state = self.folder.read_state()
        return self.position > 0 or (state is not None and state.status == "running")

    def _size(self) -> int:
        try:
            return self.folder.events.stat().st_size
        except FileNotFoundError:
            return 0

    def _complete_lines(self) -> list[tuple[bytes, int]]:
        """The whole lines of the next block written after ``position``, each with the byte offset after it (a line
        still being written has no newline yet and waits for the next read)."""
        try:
            with self.folder.events.open("rb") as file:
                file.seek(self.position)
                # A block at a time: a long run's log is hundreds of MB, replayed by attach from byte 0. A line longer
                # than a block is read on to its end.
                chunk = file.read(READ_BLOCK)
                while b"\n" not in chunk and (more := file.read(READ_BLOCK)):
                    chunk += more
        except FileNotFoundError:
            return []
        except PermissionError as error:  # another user's file
            raise unreadable(self.folder.events, error) from None
        except OSError as error:  # a folder in its place, a disk error
            raise RunFolderError(f"cannot read the run's event log {self.folder.events}: {error.strerror or error}; "
                                 "it is damaged or not readable by this user") from None
        lines, offset = [], self.position
        for line in chunk.splitlines(keepends=True):
            if not line.endswith(b"\n"):
                break
            offset += len(line)
            lines.append((line, offset))
        return lines


class EventLogGone(RunFolderError):
    """A live run's events.jsonl deleted while its trainer trains: nothing more can be shown of it."""


class MovedRun:
    """The events of a run folder moved or copied since they were written name its files where it was then (each start's
    run_dir): read from where it is now, its previews, checkpoints and outputs are named there, not at a place that
    is gone or, for a copy, at the original's."""

    def __init__(self, folder: RunFolder) -> None:
        self.now = os.path.abspath(folder.path)  # without `..`: the same folder spelled otherwise is not moved
        self.then: str | None = None

    def __call__(self, event: Event) -> Event:
        if isinstance(event, RunStarted):
            self.then = event.run_dir if isinstance(event.run_dir, str) else None
        elif self.then and self.then != self.now:
            if isinstance(event, SampleSaved):
                return replace(event, paths=[self._here(path) for path in event.paths], grid=self._here(event.grid))
            if isinstance(event, SamplesScored):
                return replace(event, folder=self._here(event.folder))
            if isinstance(event, CheckpointSaved):
                return replace(event, path=self._here(event.path))
            if isinstance(event, RunFinished):
                return replace(event, outputs={kind: self._here(path) for kind, path in event.outputs.items()})
        return event

    def _here(self, path: str | None) -> str | None:
        then = self.then or ""
        if isinstance(path, str) and (path == then or path.startswith(then + os.sep)):
            return self.now + path[len(then):]
        return path


def log_gone(folder: RunFolder) -> str:
    return (f"the run's event log {folder.events} is gone (deleted while the run trains): there is nothing to show, "
            f"but the trainer goes on training (its output: {folder.log}). `dbtui stop {shlex.quote(str(folder.path))}` "
            f"saves a checkpoint and stops it; or wait for its model in {folder.outputs} at its end")


def events_missing(folder: RunFolder) -> str | None:
    """What to say of a run folder whose events.jsonl holds no event (a trainer killed or failed before it wrote one, a
    copy of the folder without it, a damaged one); None when it holds some."""
    if folder.events.is_file():
        try:
            if folder.events.stat().st_size:
                return None
        except OSError:
            return None  # its reader says why
        how = "is empty"
    elif folder.events.exists():
        how = "is not a file (damaged)"
    else:
        how = "is missing"
    log = f"; its trainer's output is in {folder.log}" if folder.log.is_file() else ""
    return f"the run in {folder.path} has no events: its events.jsonl {how} (status: {folder.status()}){log}"


def no_event_read(folder: RunFolder) -> str:
    """What to say of a run folder whose events.jsonl holds lines, none of them an event (blank or damaged ones)."""
    return f"the run in {folder.path} has no events: no line of its events.jsonl is one dbtui can read (status: {folder.status()})"


def _parse(line: bytes) -> Event | None:
    if not line.strip():
        return None
    try:
        return event_from_dict(json.loads(line))
    except (ValueError, TypeError):
        return None


def follow_events(
    folder: RunFolder, *, poll: float = 0.2, stop: Callable[[], bool] = lambda: False, follow: bool = True, start: int = 0
) -> Iterator[Event]:
    """Every event of the run from byte ``start`` (see ``EventFollower.events``)."""
    return EventFollower(folder, start).events(poll=poll, stop=stop, follow=follow)
