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
