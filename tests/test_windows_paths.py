"""A Windows path ('data\dog', as a TOML syntax error's hint says to write it in 'single quotes') on Linux, where \ is
part of a name: the instance folder was "not there" beside data/dog with no word of why, and a class or output folder of
that one name was made in the working folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.profile_checks import check_profile
from engine.runs.inputs_check import RunInputsMissingError, check_inputs
from tests.training_helpers import tiny_profile

pytestmark = pytest.mark.skipif(os.sep != "/", reason="\\ separates folders on Windows")


def test_backslashed_folders_are_said_with_the_path_to_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("data/dog").mkdir(parents=True)
    profile = tiny_profile(tmp_path, concepts=[{"instance_dir": "data\\dog", "instance_prompt": "photo of zwx dog",
                                                "class_dir": "data\\dogs", "class_prompt": "photo of a dog"}],
                           prior={"enabled": True}, saving={"output_dir": "C:\\runs"})
    said = {p.key: p.message for p in check_profile(profile).missing_here}
    assert "write the path with /, e.g. 'data/dog'" in said["concepts.0.instance_dir"]
    assert "write the path with /, e.g. 'data/dogs'" in said["concepts.0.class_dir"]
    assert "write where that folder is on this machine, e.g. '/mnt/c/runs' under WSL" in said["saving.output_dir"]
    with pytest.raises(RunInputsMissingError, match="part of a name here"):
        check_inputs(profile)
    assert sorted(os.listdir(tmp_path)) == ["data"]


# '\\nas', a server with no share named, has no drive: it stopped validate with an IndexError.
@pytest.mark.parametrize("written", ["C:/runs", "c:\\runs", "\\\\server\\share\\runs", "\\\\nas"])
def test_a_windows_drive_is_not_advised_as_a_path_with_slashes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               written: str) -> None:
    # 'C:\runs' was told to be written 'C:/runs', which passed and made a folder named C: in the working folder.
    monkeypatch.chdir(tmp_path)
    profile = tiny_profile(tmp_path, concepts=[{"instance_dir": written, "instance_prompt": "photo of zwx dog"}],
                           saving={"output_dir": written})
    said = [p for p in check_profile(profile).missing_here if p.key in ("concepts.0.instance_dir", "saving.output_dir")]
    assert sorted(p.key for p in said) == ["concepts.0.instance_dir", "saving.output_dir"]
    assert all("write where that folder is on this machine" in p.message for p in said)
    assert all("e.g. '/mnt/c/runs' under WSL" in p.message for p in said) == written.lower().startswith("c:")
    with pytest.raises(RunInputsMissingError, match="a path on Windows"):
        check_inputs(profile)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("written", ["//tmp/runs", "runs:v2", "C:runs"])
def test_a_linux_path_like_a_drive_is_taken(tmp_path: Path, written: str) -> None:
    profile = tiny_profile(tmp_path, saving={"output_dir": written})
    assert not [p for p in check_profile(profile).missing_here if p.key == "saving.output_dir"]


def test_a_folder_whose_name_holds_a_backslash_is_taken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("my\\runs").mkdir()
    profile = tiny_profile(tmp_path, saving={"output_dir": "my\\runs"})
    assert not [p for p in check_profile(profile).missing_here if p.key == "saving.output_dir"]


# model.pretrained = 'C:\models\sd15.safetensors' was only "does not exist on this machine", and a folder so written
# "not on this machine, nor a hub id".
@pytest.mark.parametrize(("key", "written", "said"), [
    ("pretrained", "C:\\models\\sd15.safetensors", "e.g. '/mnt/c/models/sd15.safetensors' under WSL"),
    ("pretrained", "models\\sd15", "write the path with /, e.g. 'models/sd15'"),
    ("vae", "C:\\models\\vae", "e.g. '/mnt/c/models/vae' under WSL")])
def test_a_windows_model_path_is_said_with_the_path_to_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              key: str, written: str, said: str) -> None:
    monkeypatch.chdir(tmp_path)
    profile = tiny_profile(tmp_path, model={"pretrained": "builtin:tiny-sd1", key: written})
    assert said in {p.key: p.message for p in check_profile(profile).missing_here}[f"model.{key}"]


# output_dir = "C:\new\tmp" is C:, a line break, "ew", a tab and "mp" by TOML's rules: validate called it valid, and the
# run made a folder of that name. Every path setting shares the check (engine.profile.fields._path).
PATH_SECTIONS = {"model": ["pretrained", "vae", "tokenizer"], "concepts": ["instance_dir", "class_dir"],
                 "evaluation": ["clip_model", "dino_model"], "saving": ["output_dir"], "launch": ["config_file"]}


def test_a_path_in_double_quotes_read_as_a_line_break_and_a_tab_is_refused(tmp_path: Path, capsys) -> None:
    from dbtui.cli import main

    written = '"C:\\new\\tmp"'  # as typed in the file: \n and \t are TOML escapes in double quotes
    toml = "".join(f"[{'[concepts]' if section == 'concepts' else section}]\n"
                   + ('instance_prompt = "photo of zwx"\n' if section == "concepts" else "")
                   + "".join(f"{key} = {written}\n" for key in keys) for section, keys in PATH_SECTIONS.items())
    (tmp_path / "p.toml").write_text(toml, encoding="utf-8")
    assert main(["validate", str(tmp_path / "p.toml")]) == 2
    err = capsys.readouterr().err
    for section, keys in PATH_SECTIONS.items():
        for key in keys:
            dotted = f"concepts.0.{key}" if section == "concepts" else f"{section}.{key}"
            assert f"{dotted}: holds a line break (\\n)" in err, err
    assert "write the path in 'single quotes' ('C:\\new\\tmp')" in err and "or with / ('C:/new/tmp')" in err
    assert not list(tmp_path.glob("C:*"))


def test_a_path_typed_with_a_tab_is_refused_without_advice_on_quotes_it_was_not_written_in(tmp_path: Path, capsys) -> None:
    """The wizard's fields hold a pasted tab (a Textual Input keeps all but the first line), and a TOML literal in
    single quotes holds one as typed: neither was read from "double quotes", which the advice told to change."""
    from dbtui.cli import main
    from dbtui.session import Session
    from engine.profile import profile_data

    session = Session(data=profile_data(tiny_profile(tmp_path)))
    session.set("concepts.0.instance_dir", "data\tdog")
    said = {p.key: p.message for p in session.review().problems}
    assert said["concepts.0.instance_dir"] == "holds a tab (\\t), which no path is meant to hold: retype the path"
    (tmp_path / "p.toml").write_text("[model]\npretrained = 'builtin:tiny-sd1'\n[[concepts]]\ninstance_dir = 'data\tdog'\n"
                                     "instance_prompt = 'photo of zwx'\n", encoding="utf-8")
    assert main(["validate", str(tmp_path / "p.toml"), "--set", 'saving.output_dir="C:\\new\\tmp"']) == 2
    err = capsys.readouterr().err
    assert "concepts.0.instance_dir: holds a tab (\\t), which no path is meant to hold: retype the path\n" in err, err
    assert '--set saving.output_dir="C:\\new\\tmp": holds a line break (\\n), which no path is meant to hold: in "double quotes"' \
        in err, err
