"""``dbtui dataset check`` refuses a wrong command line before it reads any tokenizer: reading one took seconds
(about 5 with a real model) before `-r` with --profile or a --concept the profile lacks was refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from dataset_fixture import textured

from dbtui.cli import main


@pytest.fixture
def profile(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    textured(0).save(folder / "0.jpg")
    path = tmp_path / "p.toml"
    path.write_text(f'[model]\npretrained = "builtin:tiny-sd1"\n[[concepts]]\ninstance_dir = "{folder}"\n'
                    'instance_prompt = "photo of ohwx dog"\n')
    return path


@pytest.mark.parametrize(("given", "said"), [
    (["--profile", "P", "-r"], "--recursive with --profile"),
    (["--profile", "P", "--concept", "3"], "--concept 3: the profile has 1 concept(s)"),
    (["--profile", "P", "nosuch"], "nosuch is not a folder"),
    (["nosuch"], "nosuch is not a folder"),
    (["PHOTOS", "--concept", "0"], "--concept chooses a concept of a profile: give --profile"),
])
def test_a_wrong_command_line_is_refused_before_the_tokenizer_is_read(
        profile: Path, given: list[str], said: str, capsys, monkeypatch) -> None:
    monkeypatch.chdir(profile.parent)
    arguments = [{"P": str(profile), "PHOTOS": "photos"}.get(word, word) for word in given]
    assert main(["dataset", "check", "--model", "builtin:tiny-sd1", *arguments]) == 2
    captured = capsys.readouterr()
    assert said in captured.err
    assert "load_tokenizer" not in captured.out


def test_a_missing_concept_folder_is_named_before_the_tokenizer_is_read(profile: Path, capsys, monkeypatch) -> None:
    """One concept's folder there and another's missing: the other was checked (its report is worth the read), but the
    missing one was named only after the tokenizer's read and that report."""
    monkeypatch.chdir(profile.parent)
    profile.write_text(profile.read_text() + '[[concepts]]\ninstance_dir = "nosuch"\ninstance_prompt = "photo of qrx cat"\n')
    assert main(["dataset", "check", "--profile", str(profile)]) == 2
    captured = capsys.readouterr()
    assert "nosuch is not a folder" in captured.err  # the check's error, at the end, still
    said = captured.out.replace("\n", " ")
    assert "load_tokenizer" in said and "concepts.1.instance_dir: nosuch is not a folder" in said
    assert said.index("nosuch is not a folder") < said.index("load_tokenizer")


def test_a_missing_folder_is_not_said_to_wait_for_a_check_a_refused_flag_stops(profile: Path, capsys, monkeypatch) -> None:
    """It said 'the other concepts are checked first', then refused --resolution: none was checked."""
    monkeypatch.chdir(profile.parent)
    profile.write_text(profile.read_text() + '[[concepts]]\ninstance_dir = "nosuch"\ninstance_prompt = "photo of qrx cat"\n')
    assert main(["dataset", "check", "--profile", str(profile), "--resolution", "512"]) == 2
    captured = capsys.readouterr()
    assert "--resolution: with --profile the profile gives it" in captured.err
    assert "checked first" not in captured.out + captured.err
