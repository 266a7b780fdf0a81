"""``dbtui dataset check --profile P --set KEY=VALUE`` checks what the run with those overrides reads: validate, run
and fit took --set, the check did not, so the images an override pointed to could not be checked before training."""

from __future__ import annotations

from pathlib import Path

import pytest
from dataset_fixture import textured
from PIL import Image

from dbtui.cli import main


@pytest.fixture(autouse=True)
def _wide_console(monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "240")  # Rich wraps table cells at 80 columns when piped


@pytest.fixture
def profile(tmp_path: Path) -> Path:
    good = tmp_path / "good"
    good.mkdir()
    for i in range(2):
        textured(i).save(good / f"{i}.jpg", quality=95)
    path = tmp_path / "p.toml"
    path.write_text(f'[model]\npretrained = "builtin:tiny-sd1"\n[[concepts]]\ninstance_dir = "{good}"\n'
                    'instance_prompt = "photo of ohwx dog"\n')
    return path


def test_an_override_s_folder_and_settings_are_the_ones_checked(profile: Path, tmp_path: Path, capsys) -> None:
    other = tmp_path / "other"
    other.mkdir()
    Image.new("RGB", (40, 40), (90, 120, 30)).save(other / "tiny.png")
    assert main(["dataset", "check", "--profile", str(profile)]) == 0
    assert "tiny.png" not in capsys.readouterr().out
    overrides = ["--set", f'concepts.0.instance_dir="{other}"', "--set", "dataset.resolution=256"]
    assert main(["dataset", "check", "--profile", str(profile), *overrides]) == 0
    out = capsys.readouterr().out
    assert "1 images, 1 usable" in out and "tiny.png" in out and "smaller than the 256 px" in out, out


def test_a_misspelt_override_is_named_as_validate_names_it(profile: Path, capsys) -> None:
    assert main(["dataset", "check", "--profile", str(profile), "--set", "dataset.resolutoin=256"]) == 2
    assert "--set dataset.resolutoin=256: unknown key (did you mean 'dataset.resolution'?)" in capsys.readouterr().err


def test_an_override_without_a_profile_is_refused(profile: Path, capsys) -> None:
    folder = profile.parent / "good"
    assert main(["dataset", "check", str(folder), "--set", "dataset.resolution=256"]) == 2
    assert "--set overrides a profile's value: give --profile with it" in capsys.readouterr().err
