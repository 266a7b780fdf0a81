"""A style concept with no identifier (instance_prompt = "") in a combined caption mode: an image without a caption
file fell back to the empty prompt, so it trained with no prompt at all, while validate said the profile was valid and
`dataset check` warned only that it "trains with the instance prompt alone". With no prompt to fall back on, a missing
caption is now refused as in caption_file mode."""

from __future__ import annotations

from pathlib import Path

import pytest
from dataset_fixture import textured

from dbtui.cli import main
from engine.dataset import check_dataset

PROFILE = """schema_version = 1
[model]
pretrained = "builtin:tiny-sd1"
[[concepts]]
instance_dir = "style"
instance_prompt = "{prompt}"
caption_mode = "{mode}"
[dataset]
resolution = 64
"""
MODES = ["caption_file_then_prompt", "prompt_then_caption_file"]


@pytest.fixture
def style(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "style"
    folder.mkdir()
    for n in range(2):
        textured(n, (64, 64)).save(folder / f"s{n}.png")
    (folder / "s0.txt").write_text("flat colours, thick outlines\n", encoding="utf-8")  # s1 has none
    monkeypatch.chdir(tmp_path)
    return folder


@pytest.mark.parametrize("mode", MODES)
def test_validate_refuses_an_image_that_would_train_with_no_prompt(style: Path, mode: str, capsys) -> None:
    Path("p.toml").write_text(PROFILE.format(prompt="", mode=mode), encoding="utf-8")
    assert main(["validate", "p.toml"]) == 2
    said = " ".join(capsys.readouterr().err.split())
    assert "concepts.0.caption_mode: 1 image(s) have no caption file, e.g. s1.png" in said


@pytest.mark.parametrize("mode", MODES)
def test_with_a_prompt_to_fall_back_on_it_stays_valid(style: Path, mode: str) -> None:
    Path("p.toml").write_text(PROFILE.format(prompt="zwx style", mode=mode), encoding="utf-8")
    assert main(["validate", "p.toml"]) == 0


@pytest.mark.parametrize("mode", MODES)
def test_the_check_calls_it_an_error_and_says_why(style: Path, mode: str) -> None:
    report = check_dataset(style, resolution=64, caption_mode=mode, instance_prompt="", workers=1)
    (found,) = [f for f in report.findings if f.code == "caption_missing"]
    assert Path(found.path).name == "s1.png" and found.severity == "error"
    assert "the instance prompt is empty: it would train with no prompt at all" in found.message
    assert report.summary.usable == 1


def test_a_prompt_not_given_to_the_check_is_not_taken_for_empty(style: Path) -> None:
    report = check_dataset(style, resolution=64, caption_mode=MODES[0], workers=1)
    (found,) = [f for f in report.findings if f.code == "caption_missing"]
    assert found.severity == "warning"


@pytest.fixture
def counted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A style folder captioned by file name, one image named only by a counter ("003.png" gives no words)."""
    folder = tmp_path / "style"
    folder.mkdir()
    textured(0, (64, 64)).save(folder / "lighthouse_at_dusk.png")
    textured(1, (64, 64)).save(folder / "003.png")
    monkeypatch.chdir(tmp_path)
    return folder


def test_validate_refuses_a_name_of_a_counter_alone_with_no_prompt_to_fall_back_on(counted: Path, capsys) -> None:
    Path("p.toml").write_text(PROFILE.format(prompt="", mode="file_name"), encoding="utf-8")
    assert main(["validate", "p.toml"]) == 2
    said = " ".join(capsys.readouterr().err.split())
    assert "1 image name(s) give no words (a counter or punctuation alone), e.g. 003.png, and the instance prompt is empty" in said
    Path("p.toml").write_text(PROFILE.format(prompt="zwx style", mode="file_name"), encoding="utf-8")
    assert main(["validate", "p.toml"]) == 0  # the prompt is its caption then


def test_the_check_calls_a_name_of_a_counter_alone_an_error_where_the_prompt_is_known_empty(counted: Path) -> None:
    report = check_dataset(counted, resolution=64, caption_mode="file_name", instance_prompt="", workers=1)
    (found,) = [f for f in report.findings if f.code == "caption_empty_name"]
    assert Path(found.path).name == "003.png" and found.severity == "error"
    unknown = check_dataset(counted, resolution=64, caption_mode="file_name", workers=1)
    assert not [f for f in unknown.findings if f.code == "caption_empty_name"]


@pytest.mark.parametrize("mode", MODES)
def test_a_misnamed_caption_with_no_prompt_to_fall_back_on_is_an_error(style: Path, mode: str) -> None:
    """S1.txt beside s1.png is not read: with an empty instance prompt s1.png trains with no prompt, which validate
    refuses, while the check called it a warning and counted the image usable."""
    (style / "S1.txt").write_text("thick outlines\n", encoding="utf-8")
    report = check_dataset(style, resolution=64, caption_mode=mode, instance_prompt="", workers=1)
    (found,) = [f for f in report.findings if f.code == "caption_misnamed"]
    assert Path(found.path).name == "s1.png" and found.severity == "error"
    assert report.summary.usable == 1
    with_prompt = check_dataset(style, resolution=64, caption_mode=mode, instance_prompt="zwx style", workers=1)
    assert [f.severity for f in with_prompt.findings if f.code == "caption_misnamed"] == ["warning"]


@pytest.mark.parametrize("mode", MODES)
def test_a_caption_in_another_extension_is_not_said_to_train_with_the_empty_prompt(style: Path, mode: str, capsys) -> None:
    """s1.caption where .txt is read, with no prompt to fall back on: validate refused s1 (no caption) and warned, too,
    that it would "train with the instance prompt alone", which is empty and which the run never reaches."""
    (style / "s1.caption").write_text("flat colours, a boat\n", encoding="utf-8")
    Path("p.toml").write_text(PROFILE.format(prompt="", mode=mode), encoding="utf-8")
    assert main(["validate", "p.toml"]) == 2
    captured = capsys.readouterr()
    said = " ".join((captured.out + captured.err).split())
    assert "1 image(s) have no caption file, e.g. s1.png; 1 of them have one training does not read, such as s1.caption" in said
    assert "instance prompt alone" not in said


def test_a_prompt_of_a_zero_width_space_alone_is_no_prompt_to_fall_back_on(counted: Path, capsys) -> None:
    """instance_prompt = "\\u200b" (pasted from a web page) shows nothing, as validate reads it in the other modes: a
    name of a counter alone trained with it as if it were a prompt, validate and the check silent."""
    Path("p.toml").write_text(PROFILE.format(prompt="\\u200b", mode="file_name"), encoding="utf-8")
    assert main(["validate", "p.toml"]) == 2
    assert "1 image name(s) give no words (a counter or punctuation alone), e.g. 003.png" in " ".join(capsys.readouterr().err.split())
    report = check_dataset(counted, resolution=64, caption_mode="file_name", instance_prompt="\u200b", workers=1)
    assert [Path(f.path).name for f in report.findings if f.code == "caption_empty_name"] == ["003.png"]


@pytest.mark.parametrize("name", ["___.png", "-.png", "!!!.png", "?!_2.png"])
def test_a_name_of_punctuation_alone_is_not_called_a_counter(counted: Path, name: str, capsys) -> None:
    """___.png gives no words, as 003.png does, but validate and the check said its name "is only a counter"."""
    (counted / "003.png").rename(counted / name)
    Path("p.toml").write_text(PROFILE.format(prompt="", mode="file_name"), encoding="utf-8")
    assert main(["validate", "p.toml"]) == 2
    said = " ".join(capsys.readouterr().err.split())
    assert f"1 image name(s) give no words (a counter or punctuation alone), e.g. {name}" in said
    report = check_dataset(counted, resolution=64, caption_mode="file_name", instance_prompt="", workers=1)
    (found,) = [f for f in report.findings if f.code == "caption_empty_name"]
    assert Path(found.path).name == name and "counter" in found.message and "punctuation" in found.message
    assert "only a counter" not in said + found.message


@pytest.mark.parametrize("name", ["!!!.png", "...png", "$$.png"])
def test_a_name_of_punctuation_alone_trains_with_the_prompt(counted: Path, name: str) -> None:
    """!!!.png (no separator, no counter) trained with the caption "!!!", validate and the check silent: it gives no
    words, as 003.png does, so the prompt is its caption. A name that says something stays its caption."""
    from engine.data.captions import caption_for

    assert caption_for(counted / name, "file_name", "zwx style") == "zwx style"
    assert caption_for(counted / "003.png", "file_name", "zwx style") == "zwx style"
    kept = {"r2d2": "r2d2", "dog!": "dog!", "\N{DOG FACE}": "\N{DOG FACE}"}  # an emoji is a word to the tokenizer
    assert {stem: caption_for(counted / f"{stem}.png", "file_name", "zwx style") for stem in kept} == kept
