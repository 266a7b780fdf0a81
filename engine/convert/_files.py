"""Output helpers shared by the converters: free-space check, write-then-rename, events."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from engine.convert.errors import NotEnoughDiskError, OutputExistsError
from engine.events import Event, PhaseFinished, PhaseProgress, PhaseStarted

Emit = Callable[[Event], None]


def _ignore(_: Event) -> None:
    pass


class Progress:
    """Sends PhaseStarted, then PhaseProgress per finished step, then PhaseFinished."""

    def __init__(self, emit: Emit | None, phase: str, total: int, description: str):
        self.emit = emit or _ignore
        self.phase = phase
        self.total = total
        self.done = 0
        self.started = time.monotonic()
        self.emit(PhaseStarted(phase=phase, total=total, description=description))

    def step(self) -> None:
        self.done += 1
        self.emit(PhaseProgress(phase=self.phase, done=self.done, total=self.total))

    def finish(self) -> None:
        self.emit(PhaseFinished(phase=self.phase, seconds=time.monotonic() - self.started))


def check_free_space(folder: Path, needed_bytes: int) -> None:
    """Refuse before writing when the output cannot fit (10% margin for headers and metadata)."""
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free
    needed = int(needed_bytes * 1.1)
    if free < needed:
        raise NotEnoughDiskError(
            f"not enough disk space in {folder}: the output needs about {needed / 1e9:.2f} GB, "
            f"{free / 1e9:.2f} GB is free. Free some space or choose an output on another disk."
        )


@contextmanager
def atomic_file(target: Path) -> Iterator[Path]:
    """A temporary path beside ``target``, renamed onto it only when the block succeeds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """A temporary folder beside ``target``, renamed onto it only when the block succeeds."""
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise OutputExistsError(f"{target} already exists and is not empty; choose a new output folder or remove it")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    try:
        yield tmp
        if target.exists():
            target.rmdir()
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
