"""A 3:4 phone portrait trained square lost its top and bottom eighth (often the top of the head) with no finding,
and a 9:16 photo's finding said "turn on aspect-ratio bucketing" without the setting that does it."""

from __future__ import annotations

from pathlib import Path

import pytest
from dataset_fixture import textured

from dbtui.cli import main
from engine.dataset import check_dataset


@pytest.fixture
def phone(tmp_path: Path) -> Path:
    folder = tmp_path / "phone"
    folder.mkdir()
    for name, size in (("portrait_3x4.jpg", (384, 512)), ("story_9x16.jpg", (288, 512)), ("insta_4x5.jpg", (400, 500)),
                       ("square.jpg", (512, 512))):
        textured(len(name), size).save(folder / name, quality=95)
    return folder


def test_a_square_crop_that_cuts_over_a_fifth_is_said_with_the_setting_to_turn_on(phone: Path) -> None:
    report = check_dataset(phone, resolution=512, workers=1)
    crops = {Path(f.path).name: f for f in report.findings if f.code == "aspect_crop"}
    assert set(crops) == {"portrait_3x4.jpg", "story_9x16.jpg"}  # 4:5 loses 20%, 10% at each end: no finding
    assert "cuts 25% of it from the top and bottom" in crops["portrait_3x4.jpg"].message
    for finding in crops.values():
        assert "dataset.bucketing = true" in finding.fix and "--set dataset.bucketing=true" in finding.fix


def test_the_set_it_names_turns_the_crop_into_a_bucket(phone: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "240")
    profile = tmp_path / "p.toml"
    profile.write_text(f'schema_version = 1\nname = "p"\n[model]\npretrained = "builtin:tiny-sd1"\n[[concepts]]\n'
                       f'instance_dir = "{phone}"\ninstance_prompt = "photo of zwx dog"\n[dataset]\nresolution = 512\n',
                       encoding="utf-8")
    main(["dataset", "check", "--profile", str(profile)])
    assert "cropping to a square cuts" in capsys.readouterr().out
    main(["dataset", "check", "--profile", str(profile), "--set", "dataset.bucketing=true"])
    assert "cropping to" not in capsys.readouterr().out


def test_a_crop_that_leaves_a_sliver_is_not_said_to_cut_all_of_it(tmp_path: Path) -> None:
    """A 30000×10 strip's square crop cuts 99.97% of it: said "cuts 100%", as if nothing were left to train on."""
    from PIL import Image

    folder = tmp_path / "strip"
    folder.mkdir()
    Image.new("RGB", (30000, 10), (90, 60, 30)).save(folder / "strip.png")
    report = check_dataset(folder, resolution=64, workers=1)
    [crop] = [f for f in report.findings if f.code == "aspect_crop"]
    assert "cuts over 99% of it from the left and right" in crop.message, crop.message
    from engine.dataset.image_findings import share

    assert (share(1.0), share(0.994), share(0.25)) == ("100%", "99%", "25%")
