"""A resume whose concept's photos changed since its checkpoint says which: a photo added to a concept's folder between
`dbtui stop` and `dbtui resume` trained the steps to come on another data set without a word, and the resume read as
exact. So does a caption file edited, added or removed where the concept's caption mode reads them. The same photos, in a
folder moved elsewhere, say nothing."""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
from pathlib import Path

import pytest

from engine.builtin import resolve_dir
from engine.events import Warning
from engine.runs.folder import RunFolder
from engine.runs.sinks import read_events
from tests.training_helpers import tiny_profile


def _stopped_at_two(tmp_path: Path, photos: Path, caption_mode: str = "instance_prompt") -> tuple[RunFolder, object]:
    from engine.runs.in_process import train
    from engine.runs.supervisor import Supervisor

    concept = {"instance_dir": str(photos), "instance_prompt": "photo of zwx disc", "caption_mode": caption_mode}
    profile = tiny_profile(tmp_path, concepts=[concept], saving={"every_n_steps": 2})
    folder = RunFolder(tmp_path / "run").create()
    cancel = threading.Event()
    first = Supervisor(folder, cancel=cancel)
    stop_at_two = lambda trainer, step: cancel.set() if step == 2 else None
    assert train(profile, folder.path, cancel=cancel, step_hooks=[first.on_step, stop_at_two], trainer_hook=first.attach).step == 2
    return folder, profile


def _record_beside_the_manifest(folder: RunFolder, names: list[str]) -> None:
    """The record is a file of its own, compact: in the manifest, which every listing of the checkpoints reads for its
    step, it made each 0.2-1 MB larger on 10,000 images."""
    from engine.data.trained_images import RECORD
    from engine.runs.checkpoints import latest_checkpoint, read_manifest

    checkpoint = latest_checkpoint(folder)
    assert checkpoint is not None and "instance_image_files" not in read_manifest(checkpoint)
    text = (checkpoint / RECORD).read_text(encoding="utf-8")
    assert sorted(json.loads(text)["concepts"][0]) == names and "\n" not in text and ", " not in text


def _resume_warnings(folder: RunFolder, profile: object) -> list[Warning]:
    from engine.runs.checkpoints import latest_checkpoint
    from engine.runs.in_process import train
    from engine.runs.supervisor import Supervisor

    before = len(list(read_events(folder.events)))
    second = Supervisor(folder, resume=latest_checkpoint(folder))
    assert train(profile, folder.path, step_hooks=[second.on_step], trainer_hook=second.attach).step == 6
    return [e for e in list(read_events(folder.events))[before:] if isinstance(e, Warning)]


def test_a_resume_says_which_photos_of_a_concept_were_added_removed_or_replaced_since_its_checkpoint(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    shutil.copytree(resolve_dir("builtin:demo-instance"), photos)
    names = sorted(p.name for p in photos.glob("*.png"))
    folder, profile = _stopped_at_two(tmp_path, photos)
    _record_beside_the_manifest(folder, names)
    shutil.copy(photos / names[0], photos / "new.png")
    (photos / names[1]).unlink()
    with (photos / names[2]).open("ab") as edited:
        edited.write(b"\0")
    said = [w.message for w in _resume_warnings(folder, profile) if "images changed" in w.message]
    assert said == [f"the images changed since step 2: concepts[0] (instance_dir {str(photos)!r}): 'new.png' added; "
                    f"{names[1]!r} removed; {names[2]!r} replaced"]


def test_the_same_photos_in_a_folder_moved_elsewhere_say_nothing(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    shutil.copytree(resolve_dir("builtin:demo-instance"), photos)
    folder, profile = _stopped_at_two(tmp_path, photos)
    moved = photos.rename(tmp_path / "moved")
    concept = profile.concepts[0].model_copy(update={"instance_dir": str(moved)})
    warnings = _resume_warnings(folder, profile.model_copy(update={"concepts": [concept]}))
    assert not [w for w in warnings if "changed since step 2" in w.message]


def test_a_resume_says_which_captions_were_edited_added_or_removed_where_the_concept_reads_them(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    shutil.copytree(resolve_dir("builtin:demo-instance"), photos)
    (photos / "zwx_03.txt").unlink()
    folder, profile = _stopped_at_two(tmp_path, photos, "caption_file_then_prompt")
    (photos / "zwx_00.txt").write_text("a red zwx disc", encoding="utf-8")
    (photos / "zwx_01.txt").unlink()
    (photos / "zwx_03.txt").write_text("a zwx disc on grass", encoding="utf-8")
    said = [w.message for w in _resume_warnings(folder, profile) if "changed since step 2" in w.message]
    assert said == [f"the captions changed since step 2: concepts[0] (instance_dir {str(photos)!r}): caption 'zwx_03.txt' "
                    "added; caption 'zwx_01.txt' removed; caption 'zwx_00.txt' edited"]


def test_captions_the_concept_does_not_read_say_nothing(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    shutil.copytree(resolve_dir("builtin:demo-instance"), photos)
    folder, profile = _stopped_at_two(tmp_path, photos)
    (photos / "zwx_00.txt").write_text("a red zwx disc", encoding="utf-8")
    assert not [w for w in _resume_warnings(folder, profile) if "changed since step 2" in w.message]


def test_a_checkpoint_that_recorded_no_captions_says_nothing_of_them() -> None:
    from engine.data.trained_images import said_image_changes

    earlier = [{"a.png": 10}]  # a checkpoint of the version before captions (and images' times) were recorded
    now = [{"a.png": [10, 1234], "a.txt": "5e1f"}]
    assert said_image_changes(earlier, now, {0: 0}, ["photos"])[:2] == ([], "")
    assert said_image_changes([{"a.png": 10, "a.txt": None}], now, {0: 0}, ["photos"])[:2] == (
        ["concepts[0] (instance_dir 'photos'): caption 'a.txt' added"], "captions")


def _record(photos: Path, caption_mode: str) -> list:
    """The record a checkpoint of a run of ``photos`` in ``caption_mode`` holds of its images."""
    from engine.data.examples import build_examples
    from engine.data.trained_images import image_record

    concept = {"instance_dir": str(photos), "instance_prompt": "photo of zwx disc", "caption_mode": caption_mode}
    profile = tiny_profile(photos, concepts=[concept])
    return image_record(build_examples(profile, [photos], {}, [(64, 64)]), profile.concepts, ".txt")


def test_captions_saved_otherwise_that_train_the_same_words_say_nothing(tmp_path: Path) -> None:
    from engine.data.trained_images import said_image_changes

    photos = tmp_path / "photos"
    shutil.copytree(resolve_dir("builtin:demo-instance"), photos)
    (photos / "zwx_03.txt").unlink()
    before = _record(photos, "caption_file_then_prompt")
    words, other = ((photos / name).read_text(encoding="utf-8").strip() for name in ("zwx_00.txt", "zwx_01.txt"))
    (photos / "zwx_00.txt").write_bytes(b"\xef\xbb\xbf" + words.encode() + b"\r\n")  # a BOM, CRLF and a final line break
    (photos / "zwx_01.txt").write_text(f"  {other}\n\n", encoding="utf-8")
    (photos / "zwx_03.txt").write_text(" \n", encoding="utf-8")  # blank: the prompt alone trains, as with none
    assert said_image_changes(before, _record(photos, "caption_file_then_prompt"), {0: 0}, [str(photos)])[0] == []
    (photos / "zwx_01.txt").write_text(f"{other}, red", encoding="utf-8")
    assert said_image_changes(before, _record(photos, "caption_file_then_prompt"), {0: 0}, [str(photos)])[0] == [
        f"concepts[0] (instance_dir {str(photos)!r}): caption 'zwx_01.txt' edited"]


def test_the_record_is_made_of_what_the_run_read_not_of_the_files_read_again(tmp_path: Path) -> None:
    from engine.data.examples import build_examples
    from engine.data.trained_images import image_record

    for mode in ("caption_file", "caption_file_then_prompt", "prompt_then_caption_file"):
        photos = tmp_path / mode
        shutil.copytree(resolve_dir("builtin:demo-instance"), photos)
        (photos / "zwx_03.txt").write_text(" ", encoding="utf-8")  # blank: none, as training reads it
        concept = {"instance_dir": str(photos), "instance_prompt": "photo of zwx disc", "caption_mode": mode}
        profile = tiny_profile(tmp_path, concepts=[concept])
        examples = build_examples(profile, [photos], {}, [(64, 64)])
        words = (photos / "zwx_00.txt").read_text(encoding="utf-8").strip()
        sizes = {path.name: [path.stat().st_size, path.stat().st_mtime_ns] for path in photos.glob("*.png")}
        shutil.rmtree(photos)  # nothing is read again: build_examples read it once
        [record] = image_record(examples, profile.concepts, ".txt")
        assert {name: size for name, size in record.items() if name.endswith(".png")} == sizes
        assert record["zwx_00.txt"] == hashlib.sha256(words.encode()).hexdigest()
        assert record["zwx_03.txt"] is None


def test_concepts_reordered_whose_folders_moved_too_are_paired_by_their_images(tmp_path: Path) -> None:
    """Paired by place, the dog now first was the cat before: its images all added, the cat's removed, and its prompt
    said changed, where only the list's order and the folders' places changed."""
    from engine.runs.resume_changes import resume_warnings

    def concept(folder: str) -> dict:
        return {"instance_dir": str(tmp_path / folder), "instance_prompt": f"photo of zwx {folder[:3]}"}

    before = tiny_profile(tmp_path, concepts=[concept("cat"), concept("dog")]).model_dump(mode="json")
    now = tiny_profile(tmp_path, concepts=[concept("dog-moved"), concept("cat-moved")])
    cat, dog = {"cat1.png": 4, "cat2.png": 7}, {"dog1.png": 5}
    settings, images = resume_warnings({"step": 8, "num_processes": 1, "profile": before}, now, 1, 6,
                                       images=[{**dog, "dog2.png": 6}, cat], recorded_images=[cat, dog])
    assert settings.message == (
        f'changed since step 8: concepts[1] (instance_dir "{tmp_path}/dog-moved") is now concepts[0]; concepts[0] '
        f'(instance_dir "{tmp_path}/cat-moved") is now concepts[1]')
    assert images.message.endswith(f": concepts[0] (instance_dir '{tmp_path}/dog-moved'): 'dog2.png' added")


@pytest.mark.parametrize(("now", "what"), [({"a.png": 10, "a.txt": "e2"}, "captions"), ({"a.png": 11, "a.txt": "e1"}, "images"),
                                           ({"a.png": 11, "a.txt": "e2"}, "images and captions")])
def test_the_warning_names_what_changed_and_what_to_do_either_way(tmp_path: Path, now: dict, what: str) -> None:
    from engine.runs.resume_changes import resume_warnings

    profile = tiny_profile(tmp_path, concepts=[{"instance_dir": str(tmp_path), "instance_prompt": "photo of zwx disc"}])
    [warning] = resume_warnings({"step": 2, "num_processes": 1, "profile": profile.model_dump(mode="json")}, profile, 1, 6,
                                images=[now], recorded_images=[{"a.png": 10, "a.txt": "e1"}])
    assert warning.message.startswith(f"the {what} changed since step 2: concepts[0]")
    assert warning.advice == (f"the steps after step 2 train on the {what} there now, those up to it on the checkpoint's, "
                              "so the resume is not exact: if the change is meant, there is nothing to do; to train on "
                              "as the checkpoint did, stop the run, restore the files named and resume it")


def test_a_photo_edited_in_place_at_the_same_size_is_told_on_resume(tmp_path: Path) -> None:
    """A photo rotated (or retouched) and saved over itself at the same size, as an uncompressed BMP always is, was
    not told: the record held names and sizes only. Its file time tells it now, as perhaps only copied again."""
    import os
    import time

    from PIL import Image, ImageDraw

    photos = tmp_path / "photos"
    photos.mkdir()
    for index in range(4):
        image = Image.new("RGB", (64, 64), "white")
        ImageDraw.Draw(image).rectangle((4 * index, 8, 40, 30 + 4 * index), fill="black")
        image.save(photos / f"p{index}.bmp")
        taken = int((time.time() - 3600) * 1e9)  # taken earlier: an edit now is more than two seconds later
        os.utime(photos / f"p{index}.bmp", ns=(taken, taken))
    folder, profile = _stopped_at_two(tmp_path, photos)
    size = (photos / "p1.bmp").stat().st_size
    with Image.open(photos / "p1.bmp") as image:
        image.transpose(Image.Transpose.ROTATE_180).save(photos / "p1.bmp")
    assert (photos / "p1.bmp").stat().st_size == size
    said = [w.message for w in _resume_warnings(folder, profile) if "images may have changed" in w.message]
    assert said == [f"the images may have changed since step 2: concepts[0] (instance_dir {str(photos)!r}): 'p1.bmp': its "
                    "file time changed at the same size (edited in place, or copied again without its time)"]


def test_file_times_all_changed_by_a_copy_say_nothing_and_a_record_of_sizes_alone_is_read() -> None:
    from engine.data.trained_images import said_image_changes

    second = 10**9
    before = [{"a.png": [10, 100 * second], "b.png": [20, 200 * second]}]
    copied = [{"a.png": [10, 555 * second], "b.png": [20, 556 * second]}]  # cp -r or scp -r, which keep no file times
    assert said_image_changes(before, copied, {0: 0}, ["photos"])[:2] == ([], "")
    assert said_image_changes([{"a.png": 10, "b.png": 20}], copied, {0: 0}, ["photos"])[:2] == ([], "")  # no times kept
    assert said_image_changes([{"a.png": 10, "b.png": 21}], copied, {0: 0}, ["photos"])[:2] == (
        ["concepts[0] (instance_dir 'photos'): 'b.png' replaced"], "images")


DAMAGED = [[10, "x"], [10, 9.5], [10, True], [10, [1]], [10, None], [], [10], ["10", 9], {}, "x", None, 1.5, True]


@pytest.mark.parametrize("value", DAMAGED, ids=repr)
def test_a_damaged_value_of_the_record_never_fails_a_resume(value: object) -> None:
    """A hand-edited or damaged trained_images.json (valid JSON, another shape) failed the resume with a TypeError
    ([10, "x"]: a time that is text; [10, [1]]) or an IndexError ([]) in the comparison of file times."""
    from engine.data.trained_images import said_image_changes, shared_images

    now = [{"a.png": [10, 9], "b.png": [20, 9], "b.txt": "hash"}]
    for before in ([{"a.png": value, "b.png": [20, 9], "b.txt": value}], [value], [{"a.png": value}] * 2):
        said_image_changes(before, now, {0: 0}, ["photos"])
        shared_images(before, now)(0, 0)


def test_a_time_that_is_no_whole_number_is_none_and_an_empty_value_another_size() -> None:
    """As of a record of sizes alone: the same size says nothing of the time. An empty value has no size: replaced."""
    from engine.data.trained_images import said_image_changes

    now = [{"a.png": [10, 9], "b.png": [20, 9]}]
    assert said_image_changes([{"a.png": [10, "x"]}], [{"a.png": [10, 9 + 10**12]}], {0: 0}, ["photos"]).said == []
    assert said_image_changes([{"a.png": []}], now, {0: 0}, ["photos"]).said == [
        "concepts[0] (instance_dir 'photos'): 'b.png' added; 'a.png' replaced"]


def test_a_resume_from_a_checkpoint_whose_record_was_edited_by_hand_goes_on(tmp_path: Path) -> None:
    """`dbtui resume` failed as a bug of dbtui where the checkpoint's trained_images.json held a time that is text."""
    from engine.data.trained_images import RECORD
    from engine.runs.checkpoints import latest_checkpoint

    photos = tmp_path / "photos"
    shutil.copytree(resolve_dir("builtin:demo-instance"), photos)
    folder, profile = _stopped_at_two(tmp_path, photos)
    checkpoint = latest_checkpoint(folder)
    assert checkpoint is not None
    record = json.loads((checkpoint / RECORD).read_text(encoding="utf-8"))
    record["concepts"][0] = {name: [size, "edited"] for name, (size, _) in record["concepts"][0].items()}
    (checkpoint / RECORD).write_text(json.dumps(record), encoding="utf-8")
    assert not [w for w in _resume_warnings(folder, profile) if "changed" in w.message]
