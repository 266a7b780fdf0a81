"""An image with both a.txt and a.caption (two captioning tools' output): training reads the one caption_extension
names, and the doctor said nothing of the other, which the user may have meant to train with."""

from __future__ import annotations

from pathlib import Path

import pytest
from dataset_fixture import textured

from engine.dataset import check_dataset


@pytest.mark.parametrize(("extension", "used", "unread"), [(".txt", "a.txt", "a.caption"), (".caption", "a.caption", "a.txt")])
def test_the_caption_file_training_does_not_read_is_named_with_the_one_it_does(tmp_path: Path, extension: str,
                                                                              used: str, unread: str) -> None:
    textured(0, (64, 64)).save(tmp_path / "a.jpg")
    textured(1, (64, 64)).save(tmp_path / "b.jpg")
    for name in ("a.txt", "a.caption", f"b{extension}"):
        (tmp_path / name).write_text("photo of zwx dog\n", encoding="utf-8")
    report = check_dataset(tmp_path, resolution=64, caption_mode="caption_file", caption_extension=extension, workers=1)
    [found] = [f for f in report.findings if f.code == "caption_other_extension"]
    assert Path(found.path).name == unread and found.severity == "warning"
    assert f"a.jpg has two caption files, {used} and {unread}: training reads {used} alone" in found.message
    assert "dataset.caption_extension" in found.fix


def test_no_word_of_it_where_training_reads_no_caption_file(tmp_path: Path) -> None:
    """The instance prompt alone trains: captions_unused says so, once."""
    textured(0, (64, 64)).save(tmp_path / "a.jpg")
    for name in ("a.txt", "a.caption"):
        (tmp_path / name).write_text("photo of zwx dog\n", encoding="utf-8")
    report = check_dataset(tmp_path, resolution=64, caption_mode="instance_prompt", workers=1)
    assert "caption_other_extension" not in {f.code for f in report.findings}
