"""`dbtui run --detach` decoding every training image before it detaches: a damaged one is refused in the user's
terminal, not written in a log they may read only hours later. The trainer decodes them too (a headless start, a
resume, ``accelerate launch``), but not again: this writes the run's record of them (engine/data/decoded_record.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from engine.builtin import concept_folders
from engine.data.decoded_record import DecodedRecord
from engine.data.decoding import check_training_images
from engine.events import Event, PhaseProgress
from engine.profile import Profile


def decode_before_start(profile: Profile, run_dir: Path, progress: Callable[[int, int], None]) -> None:
    """Decode the images ``profile``'s run trains on that ``run_dir`` has no record of; a DataError names every one that
    cannot be. ``progress``: told (done, total) as they are decoded."""
    def told(event: Event) -> None:
        if isinstance(event, PhaseProgress):
            progress(event.done, event.total or 0)

    check_training_images(profile, *concept_folders(profile), told, record=DecodedRecord.of_run(run_dir))
