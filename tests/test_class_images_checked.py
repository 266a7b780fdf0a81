"""`dataset check --profile` reads the class folder's own images as the run does: one it cannot decode is an error."""

from __future__ import annotations

from pathlib import Path

from dataset_fixture import textured

from engine.dataset import check_dataset


def test_a_damaged_picture_of_the_class_folder_is_an_error_not_a_class_image_present(tmp_path: Path) -> None:
    """The check said '0 error(s)' and counted the picture among the class images present; the run then failed on it
    after the caching pass ('1 image file(s) cannot be decoded'), told to run the very check that had passed it."""
    instance, classes = tmp_path / "dog", tmp_path / "class"
    for folder in (instance, classes):
        folder.mkdir()
        for i in range(2):
            textured(i, (64, 64)).save(folder / f"{i}.png")
    whole = (classes / "0.png").read_bytes()
    (classes / "cut.png").write_bytes(whole[: len(whole) // 2])
    report = check_dataset(instance, resolution=64, workers=1, class_dir=classes, num_class_images=3)
    errors = [(Path(f.path).name, f.code) for f in report.findings if f.severity == "error"]
    assert errors == [("cut.png", "truncated")]
    assert report.has_errors
