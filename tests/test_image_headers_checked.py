"""Image files whose header cannot be read (a text file named .jpg, a zero-byte .png) are found by `dbtui validate`
and refused by the launch, before any trainer starts: `dbtui run --detach` said "trainer started in the background"
and the trainer failed seconds later, after loading its model."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from PIL import Image

from dbtui.cli import main
from dbtui.cli.common import header_progress
from engine.data.examples import unreadable_said
from engine.profile import save_profile
from engine.runs.folder import run_dir_for
from engine.runs.inputs_check import RunInputsMissingError, check_inputs
from engine.runs.launcher import start_run
from training_helpers import tiny_profile


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "imgs"
    folder.mkdir()
    for index in range(2):
        Image.new("RGB", (64, 64), (index * 90, 20, 20)).save(folder / f"{index}.png")
    (folder / "text.jpg").write_text("not a picture\n")
    (folder / "x.png").write_bytes(b"")
    return folder


def test_the_launch_refuses_unreadable_headers_before_a_trainer_starts(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    profile = tiny_profile(tmp_path, concepts=[{"instance_dir": str(folder), "instance_prompt": "photo of zwx disc"}])
    with pytest.raises(RunInputsMissingError) as refused:
        start_run(profile, detach=True)
    # The trainer's own words, for both files.
    assert unreadable_said([folder / "text.jpg", folder / "x.png"]) in str(refused.value)
    assert not run_dir_for(profile).exists()


def test_validate_lists_them_and_a_clean_folder_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _folder(tmp_path)
    profile = tiny_profile(tmp_path, concepts=[{"instance_dir": str(folder), "instance_prompt": "photo of zwx disc"}])
    path = save_profile(profile, tmp_path / "p.toml")
    main(["validate", "--elsewhere", str(path)])
    out = capsys.readouterr().out
    assert "concepts.0.instance_dir: 2 image file(s) cannot be read as pictures" in out
    assert "text.jpg" in out and "x.png" in out
    (folder / "text.jpg").unlink()
    (folder / "x.png").unlink()
    check_inputs(profile)


def test_the_users_own_class_images_are_checked_too(tmp_path: Path) -> None:
    folder, classes = _folder(tmp_path), tmp_path / "class"
    classes.mkdir()
    (classes / "a.jpg").write_text("html error page")
    for name in ("text.jpg", "x.png"):
        (folder / name).unlink()
    profile = tiny_profile(tmp_path, concepts=[{"instance_dir": str(folder), "instance_prompt": "photo of zwx disc",
                                                "class_dir": str(classes), "class_prompt": "photo of a disc",
                                                "num_class_images": 2}],
                           prior={"enabled": True})
    with pytest.raises(RunInputsMissingError, match=r"concepts\.0\.class_dir: 1 image file\(s\) cannot be read"):
        check_inputs(profile)


def test_a_slow_check_says_how_far_it_is(capsys: pytest.CaptureFixture[str]) -> None:
    quick = header_progress()
    for done in range(1, 4):
        quick(done, 3)
    assert capsys.readouterr().err == ""  # a check within a second says nothing
    slow = header_progress(after=0.05)
    slow(1, 3)
    time.sleep(0.1)  # from the first header on: the checks before it are not counted
    for done in range(2, 4):
        slow(done, 3)
    assert capsys.readouterr().err.strip().endswith("checking image headers: 3/3")


def test_validate_says_no_caption_problem_of_a_file_that_is_no_picture(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # validate said "2 caption file(s) are empty, e.g. text.txt: their images would train with no prompt" (and one
    # "cannot be read") of the text beside files the run refuses as no pictures, as the dataset check does not.
    folder = _folder(tmp_path)
    for index in range(2):
        (folder / f"{index}.txt").write_text("photo of zwx disc")
    (folder / "text.txt").write_text("")
    (folder / "x.txt").write_bytes(b"\xff\xfe\xfa")
    (folder / "y.png").write_bytes(b"%PDF-1.4")
    (folder / "y.txt").write_bytes(b"\xc3\x28")  # no UTF-8
    profile = tiny_profile(tmp_path, concepts=[{"instance_dir": str(folder), "instance_prompt": "photo of zwx disc",
                                                "caption_mode": "caption_file"}])
    main(["validate", "--elsewhere", str(save_profile(profile, tmp_path / "p.toml"))])
    out = capsys.readouterr().out
    assert "3 image file(s) cannot be read as pictures" in out
    assert "concepts.0.caption_mode" not in out
