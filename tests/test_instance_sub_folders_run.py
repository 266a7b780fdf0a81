"""A run on an instance folder whose photos are partly in sub-folders (a phone's 2023/holiday/, web/): the run trained
the folder's own photos and left the others out without a word; `dataset check` warned, `dbtui run` did not."""

from __future__ import annotations

from pathlib import Path

from dataset_fixture import textured


def _images(folder: Path, count: int, seed: int = 0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        textured(seed + i, (64, 64)).save(folder / f"{i}.png")


def test_a_run_says_the_instance_folders_sub_folder_images_it_does_not_train(tmp_path: Path) -> None:
    from engine.runs.in_process import train
    from tests.training_helpers import tiny_profile

    photos = tmp_path / "photos"
    _images(photos, 2)
    _images(photos / "2023" / "holiday", 2, seed=10)
    _images(photos / "web", 1, seed=20)
    _images(photos / "second", 1, seed=30)  # another concept's folder: trained, as that concept
    _images(photos / "runs" / "earlier" / "samples", 1, seed=40)  # an earlier run's previews: dbtui's, not photos
    profile = tiny_profile(tmp_path, training={"max_train_steps": 1}, concepts=[
        {"instance_dir": str(photos), "instance_prompt": "photo of zwx dog"},
        {"instance_dir": str(photos / "second"), "instance_prompt": "photo of qxr cat"}])
    events = []
    train(profile, photos / "runs" / "t", sinks=[events.append])
    said = [e.message for e in events if e.kind == "warning" and "instance_dir" in e.message]
    assert said == ["concepts.0.instance_dir: its sub-folder(s) '2023', 'web' hold 3 image(s), which are not read: "
                    "training reads only the images directly in the folder; move them up into it, or make each "
                    "sub-folder a concept of its own (concepts.N.instance_dir)"], said


def test_run_folders_in_the_instance_folder_are_not_said_to_be_its_photos(tmp_path: Path) -> None:
    """saving.output_dir at the photo folder (validate warns, and allows it): an earlier run's previews, and this run's
    own on a resume, were said to be photos not read, with the advice to move them up into the folder to train on."""
    from engine.runs.in_process import train
    from tests.training_helpers import tiny_profile

    photos = tmp_path / "photos"
    _images(photos, 2)
    _images(photos / "earlier" / "samples", 2, seed=10)
    (photos / "earlier" / "events.jsonl").write_text("", encoding="utf-8")
    _images(photos / "t" / "samples", 1, seed=20)  # this run's previews of before its resume
    _images(photos / "web", 1, seed=30)
    profile = tiny_profile(tmp_path, training={"max_train_steps": 1},
                           saving={"output_dir": str(photos), "every_n_steps": 1000},
                           concepts=[{"instance_dir": str(photos), "instance_prompt": "photo of zwx dog"}])
    events = []
    train(profile, photos / "t", sinks=[events.append])
    # startswith: the run also warns that saving.output_dir is inside concepts.0.instance_dir (output_in_data)
    said = [e.message for e in events if e.kind == "warning" and e.message.startswith("concepts.0.instance_dir:")]
    assert len(said) == 1 and "its sub-folder(s) 'web' hold 1 image(s), which are not read" in said[0], said


def test_a_run_says_once_of_the_caption_files_of_another_extension_it_leaves_unread(tmp_path: Path) -> None:
    """a.caption beside a.txt (two captioning tools): `dataset check` warned that training reads a.txt alone, and the
    run trained without a word of a.caption."""
    from engine.runs.in_process import train
    from tests.training_helpers import tiny_profile

    photos = tmp_path / "photos"
    _images(photos, 3)
    for i in range(3):
        (photos / f"{i}.txt").write_text("photo of zwx dog\n", encoding="utf-8")
    for i in range(2):
        (photos / f"{i}.caption").write_text("photo of zwx dog on grass\n", encoding="utf-8")
    profile = tiny_profile(tmp_path, training={"max_train_steps": 1}, concepts=[
        {"instance_dir": str(photos), "instance_prompt": "photo of zwx dog", "caption_mode": "caption_file"}])
    events = []
    train(profile, tmp_path / "runs" / "t", sinks=[events.append])
    said = [e.message for e in events if e.kind == "warning" and "caption file" in e.message]
    assert len(said) == 1, said
    assert said[0].startswith("concepts.0.instance_dir: 2 image(s) have a second caption file that training does not "
                              "read (such as 0.caption beside 0.txt)"), said
    assert 'set dataset.caption_extension = ".caption"' in said[0]
