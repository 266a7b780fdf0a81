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


def _machines_concepts(tmp_path: Path) -> dict[str, str]:
    """The demo images as two concepts' folders on each machine, at its own paths (machine 1 through a symlink)."""
    import shutil

    from engine.builtin import resolve_dir

    folders = {}
    for rank in (0, 1):
        for name in ("dog", "cat"):
            folder = shutil.copytree(resolve_dir("builtin:demo-instance"), tmp_path / f"machine-{rank}" / name)
            (folder / f"zwx_0{int(name == 'cat')}.png").unlink()  # two data sets
            folders[f"{name}{rank}"] = str(folder)
    (tmp_path / "link").symlink_to(tmp_path / "machine-1")
    folders["cat1"] = str(tmp_path / "link" / "cat")
    return folders


def test_machines_that_list_the_concepts_in_another_order_are_refused_for_the_order_not_the_files(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Compared by place, the same data sets listed in another order were said as folders holding other files, with
    advice to copy machine 0's folders to the others, which changed nothing. The order is a difference (each machine
    takes every N-th batch of its own list, dealt concept by concept in the profile's order: machine 1 trained the
    dog's batches where machine 0 did, and the cat's never), said as one, with what to do."""
    from accelerate import utils

    from engine.training.same_profile import ProfilesDifferError, check_same_profile, differences, shared_settings

    two = {"num_processes": 2, "num_machines": 2, "main_process_ip": "127.0.0.1"}
    folder = _machines_concepts(tmp_path)

    def settings(rank: int, *concepts: dict) -> dict:
        return shared_settings(tiny_profile(tmp_path, launch={**two, "machine_rank": rank}, concepts=list(concepts)))

    dog0, cat0 = _concept(folder["dog0"], "dog"), _concept(folder["cat0"], "cat")
    dog1, cat1 = _concept(folder["dog1"], "dog"), _concept(folder["cat1"], "cat")
    main = settings(0, dog0, cat0)
    assert differences(settings(1, dog1, cat1), main) == []  # in order, each machine's own paths
    mine = settings(1, cat1, dog1)
    assert differences(mine, main) == [f"concepts[0] (instance_dir {folder['cat1']!r}, machine 0's concepts[1])",
                                       f"concepts[1] (instance_dir {folder['dog1']!r}, machine 0's concepts[0])"]
    assert differences(settings(1, {**cat1, "instance_prompt": "photo of qrv cat"}, dog1), main)[0] == (
        f"concepts[0] (instance_dir {folder['cat1']!r}, machine 0's concepts[1], and its instance_prompt ('photo of qrv "
        "cat' vs 'photo of zwx cat'))")
    assert differences(settings(1, cat1), main) == [f"concepts[0] (instance_dir {folder['cat1']!r}, machine 0's concepts[1])",
                                                    f"concepts[0] of machine 0 (not set vs instance_dir {folder['dog0']!r})"]

    monkeypatch.setattr(utils, "gather_object", lambda ours: [[0, main], [1, mine]])
    with pytest.raises(ProfilesDifferError, match=r"in 2 setting\(s\).*list the concepts as machine 0's profile does, in "
                                                  r"its order \(the order decides") as refused:
        check_same_profile(tiny_profile(tmp_path, launch={**two, "machine_rank": 1}), 2)
    assert "only on machine" not in str(refused.value) and "copy machine 0's" not in str(refused.value)

    # Listed in another order and a stale copy (a picture added on machine 1): said as a dog on machine 1 only and
    # another on machine 0 only ('not set'), with no word of the picture nor of copying the folder.
    (Path(folder["dog1"]) / "extra.png").write_bytes((Path(folder["dog1"]) / "zwx_01.png").read_bytes())
    stale = settings(1, cat1, dog1)
    assert differences(stale, main) == [
        f"concepts[0] (instance_dir {folder['cat1']!r}, machine 0's concepts[1])",
        f"concepts[1] (instance_dir {folder['dog1']!r}, machine 0's concepts[0], and its instance_dir ({folder['dog1']!r} "
        f"vs {folder['dog0']!r}: 'extra.png' only on machine 1))"]
    monkeypatch.setattr(utils, "gather_object", lambda ours: [[0, main], [1, stale]])
    with pytest.raises(ProfilesDifferError, match=r"in its order \(.*; a concept's folder .*: copy machine 0's folder to "
                                                  r"the others$"):
        check_same_profile(tiny_profile(tmp_path, launch={**two, "machine_rank": 1}), 2)


def test_machines_that_list_the_concepts_in_another_order_with_stale_folders_of_the_same_names_are_told_the_order(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two concepts whose folders hold the same file names, listed in another order on machine 1 and both its copies
    stale (an image of another size in each): paired by place, each with the other, the refusal named the folders'
    files and prompts as differing ('concepts[0].instance_prompt ('photo of zwx cat' vs 'photo of zwx dog')') and never
    the order, so copying the folders left the run refused. Listed in the same order, each is still paired in place."""
    from accelerate import utils

    from engine.training.same_profile import ProfilesDifferError, check_same_profile, differences, shared_settings

    two = {"num_processes": 2, "num_machines": 2, "main_process_ip": "127.0.0.1"}

    def folder(rank: int, name: str, sizes: tuple[int, int]) -> dict:
        made = tmp_path / f"machine-{rank}" / name
        made.mkdir(parents=True)
        for number, size in enumerate(sizes):
            (made / f"{number}.png").write_bytes(b"x" * size)
        return _concept(str(made), name)

    def settings(rank: int, *concepts: dict) -> dict:
        return shared_settings(tiny_profile(tmp_path, launch={**two, "machine_rank": rank}, concepts=list(concepts)))

    dog0, cat0 = folder(0, "dog", (10, 20)), folder(0, "cat", (30, 40))
    dog1, cat1 = folder(1, "dog", (10, 21)), folder(1, "cat", (31, 40))
    main = settings(0, dog0, cat0)
    stale = settings(1, cat1, dog1)
    assert differences(stale, main) == [
        f"concepts[0] (instance_dir {cat1['instance_dir']!r}, machine 0's concepts[1], and its instance_dir "
        f"({cat1['instance_dir']!r} vs {cat0['instance_dir']!r}: '0.png' of another size))",
        f"concepts[1] (instance_dir {dog1['instance_dir']!r}, machine 0's concepts[0], and its instance_dir "
        f"({dog1['instance_dir']!r} vs {dog0['instance_dir']!r}: '1.png' of another size))"]
    monkeypatch.setattr(utils, "gather_object", lambda ours: [[0, main], [1, stale]])
    with pytest.raises(ProfilesDifferError, match=r"list the concepts as machine 0's profile does, in its order .*; a "
                                                  r"concept's folder .*: copy machine 0's folder to the others$"):
        check_same_profile(tiny_profile(tmp_path, launch={**two, "machine_rank": 1}), 2)
    assert differences(settings(1, dog1, cat1), main) == [
        f"concepts[0].instance_dir ({dog1['instance_dir']!r} vs {dog0['instance_dir']!r}: '1.png' of another size)",
        f"concepts[1].instance_dir ({cat1['instance_dir']!r} vs {cat0['instance_dir']!r}: '0.png' of another size)"]


def test_a_resume_pairs_its_concepts_once_for_the_settings_and_the_images(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Paired for the settings' warning and again for the images' (by the images each shares with each: on 10,000
    images, every pair's record split anew)."""
    from engine.runs import concept_changes
    from engine.runs.resume_changes import resume_warnings

    paired: list[int] = []
    pairs = concept_changes.concept_pairs
    monkeypatch.setattr(concept_changes, "concept_pairs", lambda *a, **k: paired.append(1) or pairs(*a, **k))
    dog, cat = _concept(str(tmp_path / "dog"), "dog"), _concept(str(tmp_path / "cat"), "cat")
    manifest = {"step": 8, "num_processes": 1, "profile": tiny_profile(tmp_path, concepts=[dog, cat]).model_dump(mode="json")}
    moved = [{**cat, "instance_dir": str(tmp_path / "moved-cat")}, {**dog, "instance_dir": str(tmp_path / "moved-dog")}]
    recorded = [{"d.png": 10}, {"c.png": 30}]
    said = [warning.message for warning in resume_warnings(
        manifest, tiny_profile(tmp_path, concepts=moved), 1, 6, images=[{"c.png": 30, "new.png": 5}, {"d.png": 10}],
        recorded_images=recorded)]
    assert paired == [1]
    assert said == [f'changed since step 8: concepts[1] (instance_dir "{tmp_path}/moved-cat") is now concepts[0]; '
                    f'concepts[0] (instance_dir "{tmp_path}/moved-dog") is now concepts[1]',
                    f"the images changed since step 8: concepts[0] (instance_dir {str(tmp_path / 'moved-cat')!r}): "
                    "'new.png' added"]
