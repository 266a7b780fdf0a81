"""Black-and-white photos among a colour subject's: the check said nothing, and the model learnt to make grey pictures
of the subject. A set all grey is a look chosen, and said nothing of still."""

from __future__ import annotations

from pathlib import Path

from dataset_fixture import textured
from PIL import ImageOps

from engine.dataset import check_dataset


def _colour(folder: Path, count: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        textured(i, (256, 256)).save(folder / f"colour_{i}.jpg", quality=90)


def _grey(folder: Path, name: str, seed: int) -> None:
    """A phone's black-and-white filter: grey, kept as a colour JPEG."""
    folder.mkdir(parents=True, exist_ok=True)
    ImageOps.grayscale(textured(seed, (256, 256))).convert("RGB").save(folder / name, quality=90)


def _greys(report) -> list:
    return [f for f in report.findings if f.code == "some_grayscale"]


def test_grey_photos_among_colour_ones_are_said_with_what_to_do(tmp_path: Path) -> None:
    _colour(tmp_path, 3)
    _grey(tmp_path, "bw_0.jpg", 10)
    ImageOps.grayscale(textured(11, (256, 256))).save(tmp_path / "bw_1.png")  # stored grey
    [found] = _greys(check_dataset(tmp_path, resolution=64, workers=1))
    assert found.path == str(tmp_path) and found.severity == "warning"
    assert found.message.startswith("2 of 5 images are black-and-white (bw_0.jpg, bw_1.png)")
    assert "grey pictures" in found.message and "remove them or use colour versions" in found.fix


def test_a_set_all_grey_or_all_colour_is_said_nothing_of(tmp_path: Path) -> None:
    _colour(tmp_path / "colour", 3)
    for i in range(3):
        _grey(tmp_path / "grey", f"{i}.jpg", 20 + i)
    assert not _greys(check_dataset(tmp_path / "colour", resolution=64, workers=1))
    assert not _greys(check_dataset(tmp_path / "grey", resolution=64, workers=1))


def test_the_wizards_concept_check_says_it_too(tmp_path: Path) -> None:
    """The wizard's Dataset step lists check_concept's findings: the same engine call."""
    from engine.dataset import check_concept
    from tests.training_helpers import tiny_profile

    photos = tmp_path / "photos"
    _colour(photos, 2)
    _grey(photos, "bw.jpg", 30)
    profile = tiny_profile(tmp_path, concepts=[{"instance_dir": str(photos), "instance_prompt": "photo of zwx dog"}])
    assert [f.message.split(" (")[0] for f in _greys(check_concept(profile, 0))] == ["1 of 3 images are black-and-white"]
