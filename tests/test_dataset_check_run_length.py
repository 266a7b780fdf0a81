"""`dataset check --profile` of a style run that sets num_train_epochs suggested "100 per usable image", a subject's
rule, as if the profile left the run's length to it: the profile's own length is what trains."""

from __future__ import annotations

from pathlib import Path

import pytest

from dbtui.cli import main
from tests.dataset_fixture import textured


@pytest.mark.parametrize(("training", "said"), [("num_train_epochs = 10", "training.num_train_epochs = 10"),
                                                ("max_train_steps = 250", "training.max_train_steps = 250"),
                                                ("", "Suggested training steps: 300 (100 per usable image")])
def test_the_profiles_run_length_is_said_in_place_of_the_rule(training: str, said: str, tmp_path: Path, capsys) -> None:
    folder = tmp_path / "style"
    folder.mkdir()
    for i in range(3):
        textured(i).save(folder / f"{i}.jpg", quality=95)
        (folder / f"{i}.txt").write_text(f"an oil painting, scene {i}\n")
    profile = tmp_path / "p.toml"
    profile.write_text(f'[model]\npretrained = "builtin:tiny-sd1"\n[[concepts]]\ninstance_dir = "{folder}"\n'
                       f'instance_prompt = ""\ncaption_mode = "caption_file"\n[training]\n{training}\n')
    assert main(["dataset", "check", "--profile", str(profile)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert said in out, out
    assert ("100 per usable image" in out) == (not training)  # the rule only where the profile leaves the length to it


def test_a_profile_of_two_concepts_is_told_the_length_its_run_trains(tmp_path: Path, capsys) -> None:
    """Two concepts of 3 and 2 images, no length set: each was told 'Suggested training steps: 300' (and 200), its own
    folder's rule, while the run trains 100 per instance image of both together (engine.data.batches), 500 steps."""
    folders = []
    for name, count in (("dog", 3), ("cat", 2)):
        folder = tmp_path / name
        folder.mkdir()
        for i in range(count):
            textured(i).save(folder / f"{i}.jpg", quality=95)
        folders.append(folder)
    profile = tmp_path / "p.toml"
    profile.write_text('[model]\npretrained = "builtin:tiny-sd1"\n' + "".join(
        f'[[concepts]]\ninstance_dir = "{folder}"\ninstance_prompt = "photo of {word} {folder.name}"\n'
        for folder, word in zip(folders, ("zwx", "qrv"))))
    assert main(["dataset", "check", "--profile", str(profile)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "Suggested training steps" not in out, out
    assert out.count("Training steps: 500, 100 per instance image of the 2 concepts' 5 together") == 2, out
    assert main(["dataset", "check", "--profile", str(profile), "--concept", "1"]) == 0  # the other concept counts too
    assert "Training steps: 500, 100 per instance image" in " ".join(capsys.readouterr().out.split())


def test_a_folder_checked_for_one_of_two_concepts_counts_in_its_place(tmp_path: Path, capsys) -> None:
    """`--profile P --concept 0 newdog/` (10 images, concept 0's folder has 3, concept 1's 2) was told 'Training steps:
    500, ... the 2 concepts' 5 together' under newdog's '10 images': the run with newdog as concept 0 trains 1200."""
    folders = {}
    for name, count in (("dog", 3), ("cat", 2), ("newdog", 10)):
        folders[name] = folder = tmp_path / name
        folder.mkdir()
        for i in range(count):
            textured(i).save(folder / f"{i}.jpg", quality=95)
    profile = tmp_path / "p.toml"
    profile.write_text('[model]\npretrained = "builtin:tiny-sd1"\n' + "".join(
        f'[[concepts]]\ninstance_dir = "{folders[name]}"\ninstance_prompt = "photo of {word} {name}"\n'
        for name, word in (("dog", "zwx"), ("cat", "qrv"))))
    assert main(["dataset", "check", "--profile", str(profile), "--concept", "0", str(folders["newdog"])]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "10 images, 10 usable" in out, out
    assert "Training steps: 1200, 100 per instance image of the 2 concepts' 12 together" in out, out
