"""``dbtui validate`` points a key written from habit (model.path, model = "…") to its place, and warns of a
dataset.resolution far from the size the model was made for, where the model's files are on this machine."""

from __future__ import annotations

from pathlib import Path

import pytest

from dbtui.cli import main
from test_bad_profiles import DEMO, user_error


@pytest.mark.parametrize(("override", "meant"), [("model.path=x", "model.pretrained"), ("path=x", "model.pretrained"),
                                                 ("model.model=x", "model.pretrained"), ("model=x", "model.pretrained"),
                                                 ("concepts.0.path=x", "concepts.0.instance_dir"),
                                                 ("concepts.0.instance_data_dir=x", "concepts.0.instance_dir"),
                                                 ("instance_data_dir=x", "concepts.N.instance_dir")])
def test_a_key_written_from_habit_is_pointed_to_its_place(override: str, meant: str, capsys) -> None:
    said = user_error(capsys, ["validate", str(DEMO), "--set", override])
    assert f"(did you mean '{meant}'?)" in said


def test_a_concepts_path_elsewhere_is_not_taken_for_the_model(capsys) -> None:
    assert "model.pretrained" not in user_error(capsys, ["validate", str(DEMO), "--set", "dataset.path=x"])


@pytest.mark.parametrize(("resolution", "warned"), [(128, True), (96, False), (32, False)])
def test_a_resolution_far_from_the_models_own_is_a_warning(resolution: int, warned: bool, tiny_sd1: Path, capsys) -> None:
    assert main(["validate", str(DEMO), "--set", f"dataset.resolution={resolution}"]) == 0
    out = capsys.readouterr().out
    assert ("128 px is 2× the 64 px this model was made for" in out) == warned


@pytest.mark.parametrize(("resolution", "said"), [
    (504, "504 px is less than half the 1024 px"),  # 2.03×: it read "2× smaller", though half is not warned of
    (496, "496 px is 2.1× smaller than the 1024 px"),
    (1544, "1544 px is more than 1.5× the 1024 px"),  # 1.51×: it read "1.5× the", which is not warned of
    (1600, "1600 px is 1.6× the 1024 px"),
])
def test_the_size_ratio_agrees_with_the_rule_that_warns(resolution: int, said: str) -> None:
    from engine.model_problems import resolution_problems
    from engine.profile import loads_profile

    profile = loads_profile('model.pretrained = "builtin:sdxl-random"\n[[concepts]]\ninstance_dir = "."\n'
                            'instance_prompt = "photo of zwx dog"\n', [f"dataset.resolution={resolution}"])
    [problem] = resolution_problems(profile)
    assert problem.message.startswith(f"{said} this model was made for"), problem.message


def test_a_full_size_builtin_is_judged_by_its_size_unbuilt(capsys, monkeypatch) -> None:
    import engine.builtin

    monkeypatch.setattr(engine.builtin, "_build_model", lambda *a: pytest.fail("built a full-size model"))
    argv = ["validate", str(DEMO), "--set", 'model.pretrained="builtin:sdxl-random"', "--set", "dataset.resolution=256"]
    assert main(argv) == 0
    assert "256 px is 4× smaller than the 1024 px this model was made for" in capsys.readouterr().out


@pytest.mark.parametrize(("model", "warned"), [("stabilityai/stable-diffusion-xl-base-1.0", True), ("someone/my-model", False)])
def test_a_hub_model_not_downloaded_is_judged_by_the_size_its_name_says(model: str, warned: bool, capsys, monkeypatch,
                                                                         tmp_path) -> None:
    """validate said nothing of 256 px on an SDXL hub id not downloaded, where the wizard's Model step warned by its
    name; a name that says no family is guessed at by neither. An empty hub cache: one holding the model is read."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    argv = ["validate", str(DEMO), "--set", f"model.pretrained={model!r}", "--set", "dataset.resolution=256"]
    assert main(argv) == 0
    out = " ".join(capsys.readouterr().out.split())
    said = "256 px is 4× smaller than the 1024 px this model was likely made for (a guess by its name)"
    assert (f"warning: --set dataset.resolution=256: {said}: its images lose detail" in out) == warned, out
    assert warned or "px this model" not in out
