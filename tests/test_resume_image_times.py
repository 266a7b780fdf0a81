"""A resume tells a photo edited in place at the same size by its file time, and nothing of a data set copied without
its files' times: a one-photo concept copied with `cp -r` (each concept then read as "edited in place"), a tar of the
data set (GNU tar keeps whole seconds), were told as photos edited, and its advice sent users to restore files that never
changed. A time changed at the same size may be a copy: it is told as such, with advice that fits both."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from PIL import Image, ImageDraw

from engine.data.trained_images import ImageRecord, said_image_changes
from tests.training_helpers import tiny_profile

HOUR_AGO = time.time() - 3600


def _photos(folder: Path, count: int, whole_seconds: int = 0) -> Path:
    """``count`` photos taken an hour ago (a copy made now is seen by its time), the first ``whole_seconds`` of them at a
    whole second, as a file extracted from a tar or a zip is."""
    folder.mkdir()
    for index in range(count):
        path = folder / f"p{index}.bmp"  # uncompressed: an edit keeps its size
        image = Image.new("RGB", (64, 64), "white")
        ImageDraw.Draw(image).rectangle((4 * index, 8, 40, 30 + 2 * index), fill="black")
        image.save(path)
        taken = (int(HOUR_AGO) + index) * 10**9 + (0 if index < whole_seconds else 700_000_000)
        os.utime(path, ns=(taken, taken))
    return folder


def _record(*folders: Path) -> ImageRecord:
    """The record a checkpoint of a run of the concepts ``folders`` holds of their images, read from the files."""
    from engine.data.examples import build_examples
    from engine.data.trained_images import image_record

    concepts = [{"instance_dir": str(folder), "instance_prompt": "photo of zwx disc"} for folder in folders]
    profile = tiny_profile(folders[0], concepts=concepts)
    return image_record(build_examples(profile, list(folders), {}, [(64, 64)]), profile.concepts, ".txt")


def _said(before: ImageRecord, *folders: Path) -> list[str]:
    return said_image_changes(before, _record(*folders), {n: n for n in range(len(folders))}, list(map(str, folders))).said


def test_a_one_photo_concept_copied_without_its_time_says_nothing(tmp_path: Path) -> None:
    one, three = _photos(tmp_path / "one", 1), _photos(tmp_path / "three", 3)
    before = _record(one), _record(one, three)
    for folder in (one, three):
        subprocess.run(["cp", "-r", str(folder), str(tmp_path / f"{folder.name}-copy")], check=True)  # no -p
    copies = tmp_path / "one-copy", tmp_path / "three-copy"
    assert (copies[0] / "p0.bmp").stat().st_mtime_ns != (one / "p0.bmp").stat().st_mtime_ns
    assert _said(before[0], copies[0]) == []
    assert _said(before[1], *copies) == []  # every file of the record changed time: the whole data set copied


def test_a_tar_of_the_data_set_that_keeps_whole_seconds_says_nothing(tmp_path: Path) -> None:
    photos = _photos(tmp_path / "photos", 4, whole_seconds=2)  # two already extracted from an archive once
    before = _record(photos)
    times = [path.stat().st_mtime_ns for path in sorted(photos.iterdir())]
    subprocess.run(["tar", "czf", str(tmp_path / "photos.tgz"), "-C", str(tmp_path), "photos"], check=True)
    shutil.rmtree(photos)
    subprocess.run(["tar", "xzf", str(tmp_path / "photos.tgz"), "-C", str(tmp_path)], check=True)
    assert [path.stat().st_mtime_ns for path in sorted(photos.iterdir())] != times  # the fractions were lost
    assert _said(before, photos) == []


def test_photos_copied_again_from_their_source_are_told_as_perhaps_only_copied(tmp_path: Path) -> None:
    from engine.runs.resume_changes import resume_warnings

    source = _photos(tmp_path / "source", 10)
    photos = tmp_path / "photos"
    shutil.copytree(source, photos)  # with the files' times, as cp -a does
    before = _record(photos)
    for index in range(3):
        shutil.copy(source / f"p{index}.bmp", photos)  # cp without -p: the time of now
    profile = tiny_profile(tmp_path, concepts=[{"instance_dir": str(photos), "instance_prompt": "photo of zwx disc"}])
    [warning] = resume_warnings({"step": 2, "num_processes": 1, "profile": profile.model_dump(mode="json")}, profile, 1,
                                6, images=_record(photos), recorded_images=before)
    assert (warning.message, warning.advice) == (
        f"the images may have changed since step 2: concepts[0] (instance_dir {str(photos)!r}): 'p0.bmp', 'p1.bmp', "
        "'p2.bmp': their file times changed at the same size (edited in place, or copied again without their times)",
        "if they were only copied again, they hold the same photos and there is nothing to do; if they were edited, the "
        "steps after step 2 train on them as they are now, those up to it as they were, so the resume is not exact: if "
        "the edit is meant, there is nothing to do; to train on as the checkpoint did, stop the run, restore the files "
        "edited and resume it")


def test_a_photo_edited_in_place_beside_one_replaced_is_told_and_its_advice_names_both(tmp_path: Path) -> None:
    from engine.runs.resume_changes import resume_warnings

    photos = _photos(tmp_path / "photos", 4)
    before = _record(photos)
    size = (photos / "p1.bmp").stat().st_size
    with Image.open(photos / "p1.bmp") as image:
        image.transpose(Image.Transpose.ROTATE_180).save(photos / "p1.bmp")
    assert (photos / "p1.bmp").stat().st_size == size
    Image.new("RGB", (80, 64), "white").save(photos / "p2.bmp")
    profile = tiny_profile(tmp_path, concepts=[{"instance_dir": str(photos), "instance_prompt": "photo of zwx disc"}])
    [warning] = resume_warnings({"step": 2, "num_processes": 1, "profile": profile.model_dump(mode="json")}, profile, 1,
                                6, images=_record(photos), recorded_images=before)
    assert warning.message == (f"the images changed since step 2: concepts[0] (instance_dir {str(photos)!r}): 'p2.bmp' "
                               "replaced; 'p1.bmp': its file time changed at the same size (edited in place, or copied "
                               "again without its time)")
    assert warning.advice.endswith("restore the files named (of those whose time alone changed, the ones edited: one "
                                   "only copied again holds the same photo) and resume it")


def test_a_touched_photo_is_told_and_times_within_two_seconds_are_one(tmp_path: Path) -> None:
    photos = _photos(tmp_path / "photos", 3)
    before = _record(photos)
    subprocess.run(["touch", str(photos / "p0.bmp")], check=True)
    stamp = (photos / "p1.bmp").stat().st_mtime_ns + 1_900_000_000  # FAT keeps two seconds
    os.utime(photos / "p1.bmp", ns=(stamp, stamp))
    assert _said(before, photos) == [f"concepts[0] (instance_dir {str(photos)!r}): 'p0.bmp': its file time changed at "
                                     "the same size (edited in place, or copied again without its time)"]
