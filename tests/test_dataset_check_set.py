"""``dbtui dataset check|prepare --profile P --set KEY=VALUE`` reads what the run with those overrides reads: validate, run
and fit took --set, the check did not, so the images an override pointed to could not be checked before training."""

from __future__ import annotations

import shlex
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


@pytest.mark.parametrize(("given", "told"), [
    (["--resolution", "768"], "--set dataset.resolution=768"),
    (["--caption-mode", "caption_file"], "--set concepts.0.caption_mode=caption_file"),
    (["--prompt", "photo of zwx cat"], "--set 'concepts.0.instance_prompt=photo of zwx cat'"),
    (["--caption-extension", ".caption"], "--set dataset.caption_extension=.caption"),
    (["--bucketing"], "--set dataset.bucketing=true")])
def test_an_option_the_profile_gives_is_told_with_the_set_that_gives_it(profile: Path, given: list[str], told: str,
                                                                       capsys) -> None:
    """The refusal said only "change it in the profile", where the check takes --set for the key the option named."""
    assert main(["dataset", "check", "--profile", str(profile), *given]) == 2
    err = capsys.readouterr().err
    assert f"change it in the profile or with {told}, or leave out --profile" in err, err
    assert main(["dataset", "check", "--profile", str(profile), *shlex.split(told)]) in (0, 1)  # the check runs with it
    assert "dbtui:" not in capsys.readouterr().err


def _second_concept(profile: Path, folder: Path) -> Path:
    folder.mkdir()
    textured(5).save(folder / "5.jpg", quality=95)
    with profile.open("a", encoding="utf-8") as file:
        file.write(f'[[concepts]]\ninstance_dir = "{folder}"\ninstance_prompt = "photo of zwx cat"\n')
    return folder


def test_the_identifier_is_told_as_the_chosen_concept_s_instance_prompt(profile: Path, tmp_path: Path, capsys) -> None:
    _second_concept(profile, tmp_path / "second")  # --concept 1 of a profile with one concept is refused as such
    assert main(["dataset", "check", "--profile", str(profile), "--concept", "1", "--identifier", "zwx"]) == 2
    assert "change it in the profile or with --set concepts.1.instance_prompt=…, or" in capsys.readouterr().err


def test_prepare_with_a_profile_takes_set_as_the_check_does(profile: Path, tmp_path: Path, capsys) -> None:
    """prepare --profile had no --set: copies at the size a run with an override trains at could not be made."""
    good, out = profile.parent / "good", tmp_path / "out"
    overrides = ["--set", "dataset.resolution=256", "--set", "dataset.center_crop=true"]
    assert main(["dataset", "prepare", str(good), str(out), "--profile", str(profile), *overrides]) == 0
    assert {Image.open(copy).size for copy in out.glob("*.png")} == {(256, 256)}
    assert main(["dataset", "prepare", str(good), str(tmp_path / "none"), "--set", "dataset.resolution=256"]) == 2
    assert "--set overrides a profile's value: give --profile with it" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()
    refused = ["--profile", str(profile), "--resolution", "256", "--no-center-crop"]
    assert main(["dataset", "prepare", str(good), str(tmp_path / "none"), *refused]) == 2
    assert ("change them in the profile or with --set dataset.resolution=256 --set dataset.center_crop=false, or leave "
            "out --profile") in capsys.readouterr().err


def test_a_folder_s_option_is_told_as_its_own_concept_s_set(profile: Path, tmp_path: Path, capsys) -> None:
    """FOLDER, the second concept's, with --caption-mode was told --set concepts.0.caption_mode: that --set changed the
    first concept and left the folder checked under its own caption mode."""
    second = _second_concept(profile, tmp_path / "second")
    assert main(["dataset", "check", str(second), "--profile", str(profile), "--caption-mode", "caption_file"]) == 2
    assert "or with --set concepts.1.caption_mode=caption_file, or" in capsys.readouterr().err


def test_several_concepts_checked_are_told_a_set_for_any_of_them(profile: Path, tmp_path: Path, capsys) -> None:
    """No FOLDER and no --concept: every concept is checked, and the refusal told --set concepts.0.… as if for each,
    which changes the first concept alone."""
    _second_concept(profile, tmp_path / "second")
    assert main(["dataset", "check", "--profile", str(profile), "--caption-mode", "caption_file"]) == 2
    err = capsys.readouterr().err
    assert "concepts.0" not in err, err
    assert ("--set concepts.N.caption_mode=caption_file (N: the concept's number, 0 to 1; --concept N checks that one "
            "alone)") in err, err
    assert main(["dataset", "check", "--profile", str(profile), "--resolution", "256"]) == 2  # no concept's key
    assert "(N:" not in capsys.readouterr().err
