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
