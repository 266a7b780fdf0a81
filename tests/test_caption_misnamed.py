"""A caption named but for case or accents is the image's misnamed one only where it is no other image's own."""

from __future__ import annotations

from pathlib import Path

import pytest

from dataset_fixture import textured

from engine.dataset import CaptionStore


def test_a_caption_that_is_another_images_own_is_not_called_misnamed(tmp_path: Path) -> None:
    """photo.jpg beside Photo.png and Photo.txt: photo.jpg was told to rename Photo.txt after it (taking Photo.png's
    caption), bulk edits left it, the wizard's review marked it and the doctor said caption_misnamed."""
    from dbtui.screens.caption_rows import CaptionRows
    from engine.dataset import check_dataset

    textured(0, (64, 64)).save(tmp_path / "photo.jpg")
    textured(1, (64, 64)).save(tmp_path / "Photo.png")
    (tmp_path / "Photo.txt").write_text("Photo.png's own\n", encoding="utf-8")
    store = CaptionStore(tmp_path)
    assert store.misnamed() == {}
    assert CaptionRows.read(store, store.images()).label(tmp_path / "photo.jpg").markup == "photo.jpg [dim](none)[/dim]"
    report = check_dataset(tmp_path, resolution=64, caption_mode="caption_file", workers=1)
    assert {(Path(f.path).name, f.code) for f in report.findings if f.code.startswith("caption")} == {
        ("photo.jpg", "caption_missing")}
    changes = store.add_tag("zwx")
    assert changes.created == 1 and not changes.skipped and store.read("photo.jpg") == "zwx"
    assert store.read("Photo.png") == "zwx, Photo.png's own"


def test_a_caption_named_with_its_images_extension_is_that_images_misnamed_one(tmp_path: Path) -> None:
    """photo.jpg.txt, as some taggers name captions: the doctor called it a caption with no image and told the user to
    delete it, said photo.jpg had no caption, and --add-tag wrote a photo.txt of the tag alone beside it."""
    from engine.dataset import check_dataset

    textured(0, (64, 64)).save(tmp_path / "photo.jpg")
    (tmp_path / "photo.jpg.txt").write_text("a photo of zwx dog\n", encoding="utf-8")
    report = check_dataset(tmp_path, resolution=64, caption_mode="caption_file", workers=1)
    found = [(Path(f.path).name, f.code, f.fix) for f in report.findings if f.code.startswith("caption")]
    assert found == [("photo.jpg", "caption_misnamed", "rename photo.jpg.txt to photo.txt")]
    changes = CaptionStore(tmp_path).add_tag("zwx")
    assert not changes.changes and not (tmp_path / "photo.txt").exists()
    assert "rename photo.jpg.txt to photo.txt" in changes.skipped[0].reason


def test_a_caption_named_with_its_images_extension_beside_its_own_caption_is_an_orphan(tmp_path: Path) -> None:
    """photo.jpg.txt (a tagger's) beside photo.txt, which training reads: the doctor said nothing of it, where it had
    said that it has no image; the user went on editing a caption training never reads."""
    from engine.dataset import check_dataset

    textured(0, (64, 64)).save(tmp_path / "photo.jpg")
    (tmp_path / "photo.txt").write_text("a photo of zwx dog\n", encoding="utf-8")
    (tmp_path / "photo.jpg.txt").write_text("zwx, dog, grass\n", encoding="utf-8")
    report = check_dataset(tmp_path, resolution=64, caption_mode="caption_file", workers=1)
    found = [(Path(f.path).name, f.code) for f in report.findings if f.code.startswith("caption")]
    assert found == [("photo.jpg.txt", "caption_orphan")]


def test_two_images_reading_one_caption_name_get_the_same_full_rename_everywhere(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch
) -> None:
    """y.jpg and y.png both read y.txt, and y.png.txt is there: prepare told the renames that keep each image its own
    caption, while the check, the bulk edits and --auto said "rename it to y.txt", after which both trained with
    y.png's caption."""
    import sys

    from engine.dataset import autocaption, check_dataset, prepare_dataset

    class Says:
        def __init__(self, model: str):
            pass

        def __call__(self, pictures: list) -> list[str]:
            return ["a photo"] * len(pictures)

    textured(0, (64, 64)).save(tmp_path / "y.jpg")
    textured(1, (64, 64)).save(tmp_path / "y.png")
    (tmp_path / "y.png.txt").write_text("the png\n", encoding="utf-8")
    elsewhere = tmp_path_factory.mktemp("elsewhere")  # outside the data folder, and this test's own
    full = "rename y.jpg to y_2.jpg, then y.png.txt to y.txt, so each image keeps its own caption"
    report = check_dataset(tmp_path, resolution=64, caption_mode="caption_file", workers=1)
    fixes = [f.fix for f in report.findings if f.code == "caption_misnamed"]
    assert len(fixes) == 2 and all(fix.startswith("y.jpg and y.png both read y.txt") and full in fix for fix in fixes)
    changes = CaptionStore(tmp_path).add_tag("zwx")
    assert not changes.changes and full in changes.skipped[0].reason
    monkeypatch.setattr(sys.modules["engine.dataset.autocaption"], "_Blip", Says)
    assert full in autocaption(tmp_path, backend="blip", model="unused").failed[0][1]
    assert full in dict(prepare_dataset(tmp_path, elsewhere / "out", resolution=64, workers=1).caption_failures)[
        str(tmp_path / "y.png.txt")]
    assert not (tmp_path / "y.txt").exists()
    from engine.profile_checks import check_profile
    from tests.training_helpers import tiny_profile

    # validate counted the one caption name, "1 image(s) have a caption file training does not read", for two images.
    profile = tiny_profile(elsewhere, concepts=[{"instance_dir": str(tmp_path), "instance_prompt": "photo of zwx",
                                                       "caption_mode": "caption_file"}])
    said = [p.message for p in check_profile(profile).missing_here if p.key == "concepts.0.caption_mode"]
    assert any(m.startswith("2 image(s) have a caption file training does not read") and full in m for m in said), said
