"""Decoding every training image once, before the model loads: one damaged past its header (a JPEG cut short) stops
the run in seconds, not after minutes of loading a model on a rented card.

Images are decoded in a thread pool sized by the CPUs and a memory budget shared with `dataset check`
(engine/data/decode_budget.py; Pillow lets go of the GIL while it decodes), and those the run's record holds
(engine/data/decoded_record.py) are not decoded again: a re-run or a resume pays nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from engine.data.decode_budget import decode_workers
from engine.data.decoded_record import DecodedRecord
from engine.data.examples import UnreadableImagesError, build_examples, unreadable_said
from engine.data.images import DataError, decoded_rgb, list_images, named_files
from engine.data.pixel_limit import pixel_limit_is_an_error
from engine.events import Event, PhaseFinished, PhaseProgress, PhaseStarted

PHASE = "checking_images"
def _decodes(path: Path) -> bool:
    """Whether ``path`` decodes whole (the picture itself dropped at once: a pool holds one per thread)."""
    try:
        decoded_rgb(path)  # the pixel limit is made an error around the pool, once
    except DataError:
        return False
    return True


def _decode_all(paths: list[Path], done_one: Callable[[int], bool]) -> tuple[list[Path], set[Path]]:
    """(those that decode, those that do not) of ``paths``, in a thread pool; ``done_one`` is told how many are done
    after each, and ends the pass early by returning True."""
    bad: set[Path] = set()
    good: list[Path] = []
    # The pixel limit made an error once, around the pool: warnings' filters are the process's, and threads that each
    # set them (load_rgb) put back one another's, letting a picture over the limit through as a good one.
    with pixel_limit_is_an_error(), ThreadPoolExecutor(max_workers=decode_workers(paths)) as pool:
        futures = {pool.submit(_decodes, path): path for path in paths}
        for done, future in enumerate(as_completed(futures), start=1):
            if future.result():
                good.append(futures[future])
            else:
                bad.add(futures[future])
            if done_one(done):
                for waiting in futures:
                    waiting.cancel()
                break
    return good, bad


def cut_short(paths: list[Path], progress: Callable[[int, int], None] | None = None) -> list[Path]:
    """The ``paths`` that do not decode whole, in order; ``progress`` is told (done, total) after each."""
    def done_one(done: int) -> bool:
        if progress is not None:
            progress(done, len(paths))
        return False

    _, bad = _decode_all(paths, done_one) if paths else ([], set())
    return [path for path in paths if path in bad]


def decode_each(paths: list[Path], emit: Callable[[Event], None], description: str, *,
                should_stop: Callable[[], bool] = lambda: False, said_after: str = "",
                record: DecodedRecord | None = None, unreadable: list[Path] | None = None) -> None:
    """Decode every picture of ``paths`` once, as the "checking_images" phase, and raise a DataError naming every one
    that cannot be (``said_after`` added to its message); ``should_stop`` ends the pass early. Those ``record`` holds
    are skipped (no phase at all where it holds every one), and those decoded are added to it. ``unreadable``: files
    whose header could not be read, named in the same message."""
    unreadable = unreadable or []
    paths = record.unchecked(paths) if record is not None else paths
    if not paths and not unreadable:
        return
    started = time.perf_counter()
    good: list[Path] = []
    bad: set[Path] = set()
    if paths:
        emit(PhaseStarted(phase=PHASE, total=len(paths), description=description))

        def done_one(done: int) -> bool:
            emit(PhaseProgress(phase=PHASE, done=done, total=len(paths)))
            return should_stop()

        good, bad = _decode_all(paths, done_one)
    if record is not None:
        record.add(good)  # named or not, the good ones are not decoded again once the bad ones are moved out
    if bad or unreadable:
        raise DataError(damaged_said(unreadable, [path for path in paths if path in bad]) + said_after)
    emit(PhaseFinished(phase=PHASE, seconds=time.perf_counter() - started, stopped=len(good) < len(paths)))


def damaged_said(unreadable: list[Path], undecodable: list[Path]) -> str:
    """Both kinds of damaged image file named in one message: those whose header cannot be read, and those whose
    pixels cannot be decoded."""
    if not unreadable:
        return undecodable_said(undecodable)
    if not undecodable:
        return unreadable_said(unreadable)
    return (f"{unreadable_said(unreadable, decoded=True)} {len(undecodable)} more cannot be decoded (damaged or cut "
            f"short past their header): {named_files(undecodable)}; move them out too")


def undecodable_said(undecodable: list[Path]) -> str:
    """What the trainer says of image files whose header reads but whose pixels cannot be decoded."""
    return (f"{len(undecodable)} image file(s) cannot be decoded (damaged or cut short): {named_files(undecodable)}. "
            "Move them out of the folder, or train from a clean copy made by `dbtui dataset prepare`")


def training_images(profile, instance_dirs: list[Path], class_dirs: list[Path | None]) -> list[Path]:
    """The images a run trains on that are there before it starts: every concept's instance images and the class images
    of the user's own it takes (the first ``num_class_images`` of each class folder), their headers and captions
    checked as the run checks them (``build_examples``'s DataError). Class images dbtui generated are its own."""
    own = {index: list_images(folder)[:profile.concepts[index].num_class_images]
           for index, folder in enumerate(class_dirs) if profile.prior.enabled and folder is not None and folder.is_dir()}
    # The buckets need the model's size step, unknown before it loads: one stands in, as only the paths are kept here.
    side = profile.dataset.resolution
    return [example.path for example in build_examples(profile, instance_dirs, own, [(side, side)])]


def check_training_images(profile, instance_dirs: list[Path], class_dirs: list[Path | None],
                          emit: Callable[[Event], None], *, record: DecodedRecord | None = None,
                          should_stop: Callable[[], bool] = lambda: False) -> None:
    """Decode every image of ``training_images`` not decoded before (``record``), before the model loads; a DataError
    names every one that cannot be."""
    class_note = "; a class folder's image moved out is generated in its place" if profile.prior.enabled else ""
    try:
        paths, unreadable = training_images(profile, instance_dirs, class_dirs), []
    except UnreadableImagesError as error:  # the others decoded too: every damaged one named in one try
        paths, unreadable = error.readable, error.unreadable
    decode_each(paths, emit, "decoding every image once, before the model loads", should_stop=should_stop,
                record=record, unreadable=unreadable, said_after=f" (checked before the model loads{class_note})")
