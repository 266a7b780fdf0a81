"""A phone folder's exact copies of one photo (another name, another sub-folder) were "near-duplicates", and each copy
added 100 suggested steps: they are exact copies now, counted once."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from dataset_fixture import textured

from dbtui.cli import main
from engine.dataset import check_dataset
from engine.dataset.copies import exact_copy_groups


@pytest.fixture
def phone(tmp_path: Path) -> Path:
    """Three different photos, one of them copied three times (a renamed copy, two in sub-folders), and a re-encoded
    look-alike of another."""
    folder = tmp_path / "phone"
    (folder / "2023" / "holiday").mkdir(parents=True)
    (folder / "web").mkdir()
    textured(1, (256, 256)).save(folder / "2023" / "holiday" / "IMG_2001.jpg", quality=95)
    for copy in ("IMG_2001 (1).jpg", "web/IMG_2001.jpg", "web/copy_of_me.jpg"):
        shutil.copy(folder / "2023" / "holiday" / "IMG_2001.jpg", folder / copy)
    textured(2, (256, 256)).save(folder / "IMG_0002.jpg", quality=95)
    textured(2, (256, 256)).save(folder / "IMG_0002_small.jpg", quality=70)
    textured(3, (256, 256)).save(folder / "IMG_0003.png")
    return folder


def test_copies_are_exact_copies_of_the_first_and_not_near_duplicates(phone: Path) -> None:
    report = check_dataset(phone, resolution=256, recursive=True, workers=1)
    by_code: dict[str, set[str]] = {}
    for finding in report.findings:
        by_code.setdefault(finding.code, set()).add(str(Path(finding.path).relative_to(phone)))
    assert by_code["exact_copy"] == {"IMG_2001 (1).jpg", "web/IMG_2001.jpg", "web/copy_of_me.jpg"}
    assert by_code["near_duplicate"] == {"IMG_0002.jpg", "IMG_0002_small.jpg"}
    copy = next(f for f in report.findings if f.code == "exact_copy")
    assert "exact copy of" in copy.message and "not counted in the suggested training steps" in copy.message
    assert "×4" in copy.message  # the run trains each copy: the user is told the weight, training is unchanged


def test_extra_copies_add_no_suggested_steps(phone: Path, capsys, monkeypatch) -> None:
    shutil.copy(phone / "IMG_0003.png", phone / "IMG_0003 copy.png")  # a copy a run reads, beside its first
    report = check_dataset(phone, resolution=256, recursive=True, workers=1)
    # The sub-folders' three are checked (their copies found above) but not read by a run, so not counted.
    assert (report.summary.usable, report.summary.copies, report.summary.sub_folder_images) == (5, 1, 3)
    assert report.summary.suggested_steps == 400  # four different photos, not five files
    monkeypatch.setenv("COLUMNS", "240")
    assert main(["dataset", "check", "-r", str(phone)]) == 0
    out = capsys.readouterr().out
    assert "8 images, 5 usable (1 of them exact copies)" in out
    # A run leaving its length to the rule trains each copy (engine.data.examples): 500 steps, said beside the 400.
    assert ("Suggested training steps: 400 (100 per usable image, its 1 exact copies not counted; set "
            "training.max_train_steps: with it and training.num_train_epochs both empty, training runs 500 steps)") in out


def test_only_files_of_one_size_are_read_and_same_size_is_not_a_copy(tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(b"x" * 10)
    (tmp_path / "b.jpg").write_bytes(b"y" * 10)
    (tmp_path / "c.jpg").write_bytes(b"x" * 10)
    (tmp_path / "d.jpg").write_bytes(b"x" * 11)
    paths = sorted(str(p) for p in tmp_path.iterdir())
    assert exact_copy_groups(paths) == [[str(tmp_path / "a.jpg"), str(tmp_path / "c.jpg")]]


def test_files_read_with_r_are_named_by_their_sub_folder(tmp_path: Path) -> None:
    """Two IMG_0002.jpg in different folders: "a near-duplicate of IMG_0002.jpg" could not say which."""
    (tmp_path / "2023" / "holiday").mkdir(parents=True)
    (tmp_path / "web").mkdir()
    textured(1, (256, 256)).save(tmp_path / "2023" / "holiday" / "IMG_2001.jpg", quality=95)
    shutil.copy(tmp_path / "2023" / "holiday" / "IMG_2001.jpg", tmp_path / "web" / "copy_of_me.jpg")
    textured(2, (256, 256)).save(tmp_path / "IMG_0002.jpg", quality=95)
    textured(2, (256, 256)).save(tmp_path / "web" / "IMG_0002.jpg", quality=70)
    report = check_dataset(tmp_path, resolution=256, recursive=True, workers=1)
    said = {(str(Path(f.path).relative_to(tmp_path)), f.code): f.message for f in report.findings}
    assert said[("web/copy_of_me.jpg", "exact_copy")].startswith("is an exact copy of 2023/holiday/IMG_2001.jpg ")
    assert said[("IMG_0002.jpg", "near_duplicate")] == "is a near-duplicate of web/IMG_0002.jpg"
    assert said[("web/IMG_0002.jpg", "near_duplicate")] == "is a near-duplicate of IMG_0002.jpg"
