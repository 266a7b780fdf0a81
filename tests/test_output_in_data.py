"""`saving.output_dir` inside a concept's data folder: validate said nothing, and the run's previews landed among the
training pictures, where `dbtui dataset check -r` counted them as photos."""

from __future__ import annotations

from pathlib import Path

import pytest
from dataset_fixture import textured

from engine.profile_checks import check_profile
from tests.training_helpers import tiny_profile


def _said(profile) -> list[str]:
    return [str(p) for p in check_profile(profile).warnings if p.key == "saving.output_dir"]


@pytest.mark.parametrize("output", ["photos/runs", "photos", "./photos/../photos/deeper/runs"])
def test_an_output_dir_inside_an_instance_folder_is_warned_of(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              output: str) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "photos").mkdir()
    textured(0, (64, 64)).save(tmp_path / "photos" / "a.png")
    profile = tiny_profile(tmp_path, saving={"output_dir": output},
                           concepts=[{"instance_dir": "photos", "instance_prompt": "photo of zwx dog"}])
    [said] = _said(profile)
    assert "is inside concepts.0.instance_dir 'photos'" in said
    assert f"such as '{tmp_path / 'runs'}'" in said


def test_an_output_dir_inside_a_class_folder_is_warned_of_with_prior_preservation_on(tmp_path: Path) -> None:
    classes = tmp_path / "class"
    classes.mkdir()
    concept = {"instance_dir": "builtin:demo-instance", "instance_prompt": "photo of zwx disc", "class_dir": str(classes),
               "class_prompt": "photo of a disc"}
    on = tiny_profile(tmp_path, prior={"enabled": True}, saving={"output_dir": str(classes / "runs")}, concepts=[concept])
    assert ["concepts.0.class_dir" in said for said in _said(on)] == [True]


@pytest.mark.parametrize("output", ["runs", "photos2/runs", "data"])
def test_an_output_dir_beside_the_data_is_not_warned_of(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        output: str) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data" / "photos").mkdir(parents=True)
    profile = tiny_profile(tmp_path, saving={"output_dir": output},
                           concepts=[{"instance_dir": "data/photos", "instance_prompt": "photo of zwx dog"}])
    assert _said(profile) == []


def test_the_run_itself_says_it_in_its_events(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only `dbtui validate` and the wizard said it: a headless `dbtui run` user, who reads the run's log, never saw it."""
    from engine.runs.in_process import train
    from engine.runs.sinks import read_events

    monkeypatch.chdir(tmp_path)
    (tmp_path / "photos").mkdir()
    for seed in range(2):
        textured(seed, (64, 64)).save(tmp_path / "photos" / f"{seed}.png")
    profile = tiny_profile(tmp_path, saving={"output_dir": "photos/runs"}, training={"max_train_steps": 1},
                           concepts=[{"instance_dir": "photos", "instance_prompt": "photo of zwx dog"}])
    train(profile, tmp_path / "photos" / "runs" / "t")
    warned = [e.message for e in read_events(tmp_path / "photos" / "runs" / "t" / "events.jsonl") if e.kind == "warning"]
    assert [said for said in warned if "saving.output_dir 'photos/runs' is inside concepts.0.instance_dir" in said], warned
