"""Captions written as a.caption (kohya's extension) where the profile reads .txt, its default: validate said "write
them or run `dbtui dataset caption`" of captions that were there; with the prompt standing in for a missing caption
the run trained on the prompt alone without a word, and `dataset check` advised writing each one. All now name the
caption file there and the dataset.caption_extension that reads it."""

from __future__ import annotations

from pathlib import Path

import pytest
from dataset_fixture import textured

from dbtui.cli import main
from engine.data.images import list_images
from engine.data.unread_captions import unread_captions_warning
from engine.dataset import check_dataset

PROFILE = """schema_version = 1
[model]
pretrained = "builtin:tiny-sd1"
[[concepts]]
instance_dir = "photos"
instance_prompt = "photo of zwx dog"
caption_mode = "{mode}"
[dataset]
resolution = 64
"""
SET_IT = 'set dataset.caption_extension = ".caption" to train with them, or rename them to .txt'


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for n, name in enumerate(("a", "b")):
        textured(n, (64, 64)).save(folder / f"{name}.jpg")
        (folder / f"{name}.caption").write_text(f"photo of zwx dog {name}\n", encoding="utf-8")
    return folder


def test_validate_says_the_captions_are_there_under_another_extension(photos: Path, capsys, monkeypatch) -> None:
    (photos.parent / "p.toml").write_text(PROFILE.format(mode="caption_file"), encoding="utf-8")
    monkeypatch.chdir(photos.parent)
    assert main(["validate", "p.toml"]) == 2
    said = " ".join(capsys.readouterr().err.split())
    assert ("concepts.0.caption_mode: 2 image(s) have no caption file, e.g. a.jpg; 2 of them have one training does not "
            f"read, such as a.caption: {SET_IT}") in said
    assert "write them" not in said


@pytest.mark.parametrize("mode", ["caption_file", "caption_file_then_prompt", "prompt_then_caption_file"])
def test_the_check_points_to_the_caption_there_not_to_writing_one(photos: Path, mode: str) -> None:
    report = check_dataset(photos, resolution=64, caption_mode=mode, workers=1)
    found = [f for f in report.findings if f.code == "caption_missing"]
    assert [Path(f.path).name for f in found] == ["a.jpg", "b.jpg"]
    assert "a.caption is there, which training does not read (the caption extension is .txt)" in found[0].message
    assert found[0].fix == SET_IT


def test_the_run_says_its_images_train_with_the_prompt_alone(photos: Path) -> None:
    said = unread_captions_warning(list_images(photos), ".txt", "caption_file_then_prompt")
    assert said.startswith("2 image(s) have no .txt caption file, only one training does not read (such as a.caption): "
                           f"they train with the instance prompt alone; {SET_IT}")
    (photos / "a.txt").write_text("photo of zwx dog a\n", encoding="utf-8")  # a.txt is read: a.caption is a second file
    assert "1 image(s) have no .txt caption file" in unread_captions_warning(list_images(photos), ".txt", "caption_file_then_prompt")
    assert unread_captions_warning(list_images(photos), ".caption", "caption_file_then_prompt").startswith(
        "1 image(s) have a second caption file")


def test_validate_counts_the_images_it_says_have_no_caption(photos: Path, capsys, monkeypatch) -> None:
    # A file that is no picture needs no caption; b.jpg and b.png both read the one b.caption; c.jpg has none at all.
    (photos / "a.jpg").write_text("not a picture", encoding="utf-8")
    textured(3, (64, 64)).save(photos / "b.png")
    textured(4, (64, 64)).save(photos / "c.jpg")
    (photos.parent / "p.toml").write_text(PROFILE.format(mode="caption_file"), encoding="utf-8")
    monkeypatch.chdir(photos.parent)
    assert main(["validate", "p.toml"]) == 2
    said = " ".join(capsys.readouterr().err.split())
    assert ("3 image(s) have no caption file, e.g. b.jpg; 2 of them have one training does not read, such as "
            f"b.caption: {SET_IT}; for the other 1, write them or run `dbtui dataset caption`") in said


@pytest.mark.parametrize("mode", ["caption_file_then_prompt", "prompt_then_caption_file"])
def test_validate_warns_as_the_run_does_where_the_prompt_stands_in(photos: Path, mode: str, capsys, monkeypatch) -> None:
    """Under the modes that fall back to the prompt, validate called the folder valid without a word, while the run
    warned its images train with the prompt alone: validate now gives the run's warning, and still passes."""
    (photos.parent / "p.toml").write_text(PROFILE.format(mode=mode), encoding="utf-8")
    monkeypatch.chdir(photos.parent)
    assert main(["validate", "p.toml"]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert "p.toml: valid" in said
    assert (f"warning: p.toml:5: concepts.0.instance_dir: "
            f"{unread_captions_warning(list_images(photos), '.txt', mode)}") in said
    assert "they train with the instance prompt alone" in said
