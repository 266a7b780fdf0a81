"""`dbtui run --detach` decoding every training image before it detaches: a damaged one is refused in the user's
terminal, not written in a log they may read only hours later. The trainer decodes them too (a headless start, a
resume, ``accelerate launch``), but not again: this writes the run's record of them (engine/data/decoded_record.py).

A new run's record is kept out of its folder until the start goes on: a start refused for a damaged picture leaves no
run folder behind (the launch lock removes the one it made), and the next try decodes only what it did not."""

from __future__ import annotations

import contextlib
import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path

from engine.builtin import cache_dir, concept_folders
from engine.data.decoded_record import DecodedRecord
from engine.data.decoding import check_training_images
from engine.events import Event, PhaseProgress
from engine.profile import Profile
from engine.runs.folder import holds_a_run


def waiting_record(run_dir: Path) -> Path:
    """Where the record of a run not started yet in ``run_dir`` is kept: dbtui's cache, by the folder's path."""
    name = hashlib.sha256(str(Path(run_dir).absolute()).encode("utf-8", "surrogateescape")).hexdigest()[:24]
    return cache_dir() / "decoded-before-start" / f"{name}.json"


def decode_before_start(profile: Profile, run_dir: Path, progress: Callable[[int, int], None]) -> None:
    """Decode the images ``profile``'s run trains on that ``run_dir`` has no record of; a DataError names every one that
    cannot be. ``progress``: told (done, total) as they are decoded."""
    def told(event: Event) -> None:
        if isinstance(event, PhaseProgress):
            progress(event.done, event.total or 0)

    own = DecodedRecord.of_run(run_dir)
    new = not holds_a_run(Path(run_dir)) and not own.path.exists()
    record = DecodedRecord(waiting_record(run_dir)) if new else own
    check_training_images(profile, *concept_folders(profile), told, record=record)
    if new:
        with contextlib.suppress(OSError):  # best effort, as the record's own write: the trainer decodes them again
            own.path.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(record.path, own.path)
