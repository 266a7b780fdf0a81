"""Two profiles' concepts are paired by the folder each instance folder is, wherever they are compared: a resume's
notice, an export's settings and the machines of one run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.training_helpers import tiny_profile


def _concept(folder: str, name: str) -> dict:
    return {"instance_dir": folder, "instance_prompt": f"photo of zwx {name}"}


@pytest.fixture
def dog_and_cat(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[dict, dict]:
    """Two concepts with absolute folders, as the run keeps them; the cat's folder reachable as kitty/ (a symlink) and
    as the relative "cat" from the working folder."""
    for name in ("dog", "cat"):
        (tmp_path / name).mkdir()
    (tmp_path / "kitty").symlink_to(tmp_path / "cat")
    monkeypatch.chdir(tmp_path)
    return _concept(str(tmp_path / "dog"), "dog"), _concept(str(tmp_path / "cat"), "cat")


@pytest.mark.parametrize("spelt", ["kitty", "{tmp}/kitty", "cat", "./cat/", "{tmp}/cat/"])
def test_a_resume_that_reorders_concepts_and_spells_a_folder_otherwise_says_it_moved(
        tmp_path: Path, dog_and_cat: tuple[dict, dict], spelt: str) -> None:
    """Paired by normalised path, the cat's folder through a symlink or as a relative path read as the cat removed and
    a concept added, where it had only moved to the front."""
    from engine.runs.resume_changes import resume_warnings

    dog, cat = dog_and_cat
    manifest = {"step": 8, "num_processes": 1, "profile": tiny_profile(tmp_path, concepts=[dog, cat]).model_dump(mode="json")}
    moved = {**cat, "instance_dir": spelt.format(tmp=tmp_path)}
    [warning] = resume_warnings(manifest, tiny_profile(tmp_path, concepts=[moved, dog]), 1, 6)
    assert warning.message == (f'changed since step 8: concepts[1] (instance_dir "{moved["instance_dir"]}") is now '
                               f'concepts[0]; concepts[0] (instance_dir "{tmp_path}/dog") is now concepts[1]')


@pytest.mark.parametrize("spelt", ["{tmp}/cat", "kitty", "./cat/"])
def test_an_export_whose_profile_reorders_the_concepts_says_them_moved_not_their_prompts_changed(
        tmp_path: Path, dog_and_cat: tuple[dict, dict], spelt: str) -> None:
    """Compared by place, RUN/profile.toml with its concepts reordered said each concept's prompt changed into the
    other's ('concepts[0].instance_prompt: "photo of zwx dog" → "photo of zwx cat"')."""
    from engine.runs.export_settings import export_settings

    dog, cat = dog_and_cat
    manifest = {"profile": tiny_profile(tmp_path, concepts=[dog, cat]).model_dump(mode="json")}
    moved = {**cat, "instance_dir": spelt.format(tmp=tmp_path), "instance_prompt": "photo of qrv cat"}
    events: list = []
    export_settings(tiny_profile(tmp_path, concepts=[moved, dog]), manifest, tmp_path / "step-2", tmp_path / "profile.toml",
                    events.append)
    [warning] = events
    assert warning.message == (f'{tmp_path}/profile.toml is not as the checkpoint was trained: concepts[1] (instance_dir '
                               f'"{moved["instance_dir"]}") is now concepts[0], and its instance_prompt: "photo of zwx cat" → '
                               f'"photo of qrv cat"; concepts[0] (instance_dir "{tmp_path}/dog") is now concepts[1]')
    events.clear()
    export_settings(tiny_profile(tmp_path, concepts=[dog, {**cat, "instance_dir": spelt.format(tmp=tmp_path)}]), manifest,
                    tmp_path / "step-2", tmp_path / "profile.toml", events.append)
    assert events == []  # in place, another spelling of its folder is no change an export warns of
