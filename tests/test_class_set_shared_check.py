"""Two concepts sharing one class folder and class prompt: `dbtui dataset check --profile` told each its own number
to generate ("4 to generate", "6 to generate"), while the run makes the most either wants, once: 6 in all."""

from __future__ import annotations

from pathlib import Path

import pytest
from dataset_fixture import textured

from dbtui.cli import main


@pytest.fixture(autouse=True)
def _wide_console(monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "240")


def _profile(tmp_path: Path, own: int) -> Path:
    """Concepts 0 and 1 share class/ and 'photo of an animal' (4 and 6 wanted); concept 2 names class/ with another
    prompt: a set of its own. ``own``: pictures of the user's in class/, which every concept naming it takes first."""
    (tmp_path / "class").mkdir()
    for n in range(own):
        textured(20 + n, (64, 64)).save(tmp_path / "class" / f"animal_{n}.png")
    concepts = ""
    for index, (name, prompt, count) in enumerate([("dog", "an animal", 4), ("cat", "an animal", 6), ("owl", "a bird", 3)]):
        (tmp_path / name).mkdir()
        for n in range(2):
            textured(10 * index + n, (64, 64)).save(tmp_path / name / f"{n}.png")
        concepts += (f'[[concepts]]\ninstance_dir = "{tmp_path / name}"\ninstance_prompt = "photo of zwx{index} {name}"\n'
                     f'class_dir = "{tmp_path / "class"}"\nclass_prompt = "photo of {prompt}"\nnum_class_images = {count}\n')
    profile = tmp_path / "p.toml"
    profile.write_text(f'[model]\npretrained = "builtin:tiny-sd1"\n{concepts}[prior]\nenabled = true\n'
                       '[dataset]\nresolution = 64\n[training]\nmax_train_steps = 4\n', encoding="utf-8")
    return profile


@pytest.mark.parametrize("own", [0, 2])
def test_concepts_sharing_a_class_set_are_told_what_the_run_generates_for_it(tmp_path: Path, own: int, capsys) -> None:
    profile = _profile(tmp_path, own)
    assert main(["dataset", "check", "--profile", str(profile)]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("Class images for prior")]
    shared = f"present, {6 - own} to generate in all for concepts 0 and 1 (one class folder and prompt"
    assert [shared in line for line in lines] == [True, True, False], lines
    assert lines[0].startswith(f"Class images for prior preservation: 4 wanted, {own} present")
    assert lines[2].endswith(f"3 wanted, {own} present, {3 - own} to generate")  # its own prompt: a set of its own


def test_one_concept_checked_alone_is_told_the_set_it_shares(tmp_path: Path, capsys) -> None:
    assert main(["dataset", "check", "--profile", str(_profile(tmp_path, 0)), "--concept", "0"]) == 0
    assert "4 wanted, 0 present, 6 to generate in all for concepts 0 and 1" in capsys.readouterr().out
