"""Loading the scorers: a setting that names the wrong kind of model, or a checkpoint that leaves weights
unset, is refused instead of scoring with random weights; DINOv2 loads with its own model class."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image

from engine.builtin import resolve_scorer
from engine.evaluation.scorers import ScorersUnavailableError, check_scorers, loaded_scorers

CPU = torch.device("cpu")


@pytest.mark.parametrize(("clip", "dino", "setting"), [
    ("builtin:tiny-clip", "builtin:tiny-clip", "evaluation.dino_model"),
    ("builtin:tiny-dino", "builtin:tiny-dino", "evaluation.clip_model"),
])
def test_a_scorer_of_the_wrong_kind_is_refused(clip: str, dino: str, setting: str) -> None:
    with pytest.raises(ScorersUnavailableError, match=setting) as caught:
        with loaded_scorers(clip, dino, CPU):
            pass
    assert setting in caught.value.advice


def test_a_checkpoint_missing_weights_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "dino"
    shutil.copytree(resolve_scorer("builtin:tiny-dino"), folder)
    config = json.loads((folder / "config.json").read_text())
    config["num_hidden_layers"] += 1  # the last layer has no weights in the checkpoint
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ScorersUnavailableError, match="lacks"):
        with loaded_scorers("builtin:tiny-clip", str(folder), CPU):
            pass


def test_a_dinov2_scorer_loads_as_dinov2(tmp_path: Path) -> None:
    from transformers import Dinov2Config, Dinov2Model

    folder = tmp_path / "dinov2"
    Dinov2Model(Dinov2Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=4, image_size=32,
                             patch_size=8)).save_pretrained(folder)
    shutil.copy(Path(resolve_scorer("builtin:tiny-dino")) / "preprocessor_config.json", folder)
    with loaded_scorers("builtin:tiny-clip", str(folder), CPU) as scorers:
        assert type(scorers.dino).__name__ == "Dinov2Model"
        features = scorers.dino_features([Image.new("RGB", (40, 40), (200, 10, 10))])
    assert features.shape == (1, 32) and torch.isfinite(features).all()


@pytest.mark.parametrize("name", ["/nonexistent/dino", "./no-such-dino", "~/no-such-dino-folder"])
def test_a_scorer_folder_that_is_not_there_is_said_so(tmp_path: Path, name: str) -> None:
    """A path was looked up as a hub id: "offline, and not in the Hugging Face cache", and validate said valid."""
    from engine.profile_checks import check_profile
    from tests.training_helpers import tiny_profile

    with pytest.raises(ScorersUnavailableError, match=f"the folder '{name}' does not exist"):
        with loaded_scorers("builtin:tiny-clip", name, CPU):
            pass
    profile = tiny_profile(tmp_path, evaluation={"enabled": True, "clip_model": "builtin:tiny-clip", "dino_model": name})
    said = [problem for problem in check_profile(profile).warnings if problem.key == "evaluation.dino_model"]
    assert len(said) == 1 and "does not exist" in said[0].message
    off = tiny_profile(tmp_path, evaluation={"enabled": False, "dino_model": name})
    assert not [problem for problem in check_profile(off).warnings if problem.key.startswith("evaluation.")]



def test_a_scorer_path_to_no_user_is_said_so() -> None:
    """Path.expanduser raised RuntimeError out of the round (a profile says it first: its paths are expanded as read)."""
    with pytest.raises(ScorersUnavailableError, match="'~nosuchuser-of-dbtui', which names no user here"):
        with loaded_scorers("~nosuchuser-of-dbtui/clip", "builtin:tiny-dino", CPU):
            pass


def test_a_scorer_path_to_a_file_is_said_to_be_no_folder(tmp_path: Path) -> None:
    """It was "the folder … does not exist", with the file in plain view."""
    from engine.profile_checks import check_profile
    from tests.training_helpers import tiny_profile

    name = str(tmp_path / "clip.safetensors")
    Path(name).write_bytes(b"weights")
    with pytest.raises(ScorersUnavailableError, match="is a file, not a folder"):
        with loaded_scorers(name, "builtin:tiny-dino", CPU):
            pass
    profile = tiny_profile(tmp_path, evaluation={"enabled": True, "clip_model": name, "dino_model": "builtin:tiny-dino"})
    problems = [problem for problem in check_profile(profile).warnings if problem.key == "evaluation.clip_model"]
    assert len(problems) == 1 and "is a file, not a folder" in problems[0].message


def test_a_scorer_folder_without_weights_is_found_out_before_loading(tmp_path: Path) -> None:
    """Its config, tokenizer and processor loaded: the round's images were made, then loading the weights failed."""
    folder = tmp_path / "dino"
    shutil.copytree(resolve_scorer("builtin:tiny-dino"), folder)
    (folder / "model.safetensors").unlink()
    with pytest.raises(ScorersUnavailableError, match="holds no model weights"):
        check_scorers("builtin:tiny-clip", str(folder))
    check_scorers("builtin:tiny-clip", "builtin:tiny-dino")


def test_a_scorer_whose_weights_are_cut_short_is_unavailable(tmp_path: Path) -> None:
    """safetensors' own error escaped the round as a bug of dbtui and failed the run; now scoring is skipped."""
    folder = tmp_path / "clip"
    shutil.copytree(resolve_scorer("builtin:tiny-clip"), folder)
    with (folder / "model.safetensors").open("r+b") as weights:
        weights.truncate(1000)
    with pytest.raises(ScorersUnavailableError, match="weights cannot be read, damaged or cut short"):
        with loaded_scorers(str(folder), "builtin:tiny-dino", CPU):
            pass


def test_a_scorer_whose_config_does_not_fit_its_weights_names_the_config(tmp_path: Path) -> None:
    """transformers' size mismatch was worded as damaged weights, sending the user to copy weights that were sound."""
    folder = tmp_path / "clip"
    shutil.copytree(resolve_scorer("builtin:tiny-clip"), folder)
    config = json.loads((folder / "config.json").read_text())
    config["projection_dim"] *= 2
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ScorersUnavailableError, match="config.json does not fit its weights") as refused:
        with loaded_scorers(str(folder), "builtin:tiny-dino", CPU):
            pass
    assert "damaged" not in str(refused.value) and "config.json" in refused.value.advice


@pytest.mark.parametrize(("cached", "refused"), [(set(), True), ({"model.safetensors.index.json"}, False)])
def test_a_hub_scorer_whose_weights_are_not_cached_is_refused_offline(
        monkeypatch: pytest.MonkeyPatch, cached: set, refused: bool) -> None:
    import huggingface_hub

    import engine.evaluation.scorers as scorers_module

    monkeypatch.setattr(scorers_module, "_hub_reachable", lambda: False)
    monkeypatch.setattr(scorers_module, "_load", lambda *args, **kwargs: None)  # the small files are cached
    monkeypatch.setattr(scorers_module, "_model_class", lambda *args: (None, {}))
    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache",
                        lambda repo, name: f"/cache/{repo}/{name}" if repo == "org/dino" or name in cached else None)
    if refused:
        with pytest.raises(ScorersUnavailableError, match="its weights are not in the Hugging Face cache"):
            check_scorers("org/clip", "org/dino")
    else:
        check_scorers("org/clip", "org/dino")


@pytest.mark.parametrize("offline", [True, False], ids=["HF_HUB_OFFLINE=1", "no network"])
def test_an_uncached_hub_scorer_is_told_the_download_that_works_where_it_is(monkeypatch: pytest.MonkeyPatch,
                                                                             offline: bool) -> None:
    """With HF_HUB_OFFLINE=1 the run's warning said "run once with network access so the scorer is kept in the cache",
    which downloads nothing while it is set (validate's words had it mended, 901b055b): it now says the command that
    does. Without the variable, a run with network access does keep it."""
    from transformers import CLIPModel

    import engine.evaluation.scorers as scorers_module

    monkeypatch.setenv("HF_HUB_OFFLINE", "1" if offline else "0")
    monkeypatch.setattr(scorers_module, "_hub_reachable", lambda: False)
    with pytest.raises(ScorersUnavailableError, match="offline, and not in the Hugging Face cache") as refused:
        scorers_module._load(CLIPModel, "dbtui-tests/no-such-scorer")
    assert ("`HF_HUB_OFFLINE=0 hf download dbtui-tests/no-such-scorer` keeps it in the cache" in refused.value.advice) is offline
    assert ("run once with network access" in refused.value.advice) is not offline


def test_a_misspelt_builtin_scorer_is_refused_before_a_run_starts(tmp_path: Path) -> None:
    """validate said valid, and the run failed at its base round, after the model had loaded."""
    from engine.dataset.profile_paths import path_problems
    from engine.profile_checks import check_profile
    from tests.training_helpers import tiny_profile

    profile = tiny_profile(tmp_path, evaluation={"enabled": True, "clip_model": "builtin:tiny-clipx",
                                                 "dino_model": "builtin:tiny-dino"})
    [error] = check_profile(profile).errors
    assert error.key == "evaluation.clip_model" and "choose one of: builtin:tiny-clip, builtin:tiny-dino" in error.message
    assert [problem.key for problem in path_problems(profile)] == ["evaluation.clip_model"]  # what `dbtui run` refuses
    off = tiny_profile(tmp_path, evaluation={"enabled": False, "clip_model": "builtin:tiny-clipx"})
    assert not check_profile(off).errors


def test_the_builtin_scorers_swapped_are_said_before_the_run(tmp_path: Path) -> None:
    """validate said valid; the run loaded its model, then went on unscored with one warning."""
    from engine.profile_checks import check_profile
    from tests.training_helpers import tiny_profile

    profile = tiny_profile(tmp_path, evaluation={"enabled": True, "clip_model": "builtin:tiny-dino",
                                                 "dino_model": "builtin:tiny-clip"})
    said = {problem.key: problem.message for problem in check_profile(profile).warnings}
    assert "write builtin:tiny-clip" in said["evaluation.clip_model"]
    assert "write builtin:tiny-dino" in said["evaluation.dino_model"]


@pytest.mark.parametrize("recorded_in", ["settings.json", "run_started"])
def test_a_run_that_kept_its_scorer_folder_relative_is_resumed_on_the_same_scale(tmp_path: Path, monkeypatch, recorded_in) -> None:
    """Its base round recorded './scorers/clip', RUN/profile.toml now holds the folder absolute: the resume took it for
    another scorer, scored the base model again and stopped comparing the rounds scored before with the new ones."""
    from engine.evaluation.best import best_step
    from engine.evaluation.rounds import Evaluation, round_settings
    from engine.events import RunStarted, SamplesScored
    from tests.training_helpers import tiny_profile

    monkeypatch.chdir(tmp_path)
    (tmp_path / "scorers" / "clip").mkdir(parents=True)
    scorers = {"enabled": True, "images_per_prompt": 1, "dino_model": "builtin:tiny-dino"}
    old = tiny_profile(tmp_path, evaluation={**scorers, "clip_model": "./scorers/clip"})
    now = tiny_profile(tmp_path, evaluation={**scorers, "clip_model": str(tmp_path / "scorers" / "clip")})
    run = tmp_path / "run"
    base = run / "evaluation" / "step-000000"
    base.mkdir(parents=True)
    if recorded_in == "settings.json":
        (base / "settings.json").write_text(json.dumps(round_settings(old)), encoding="utf-8")
    else:  # an older dbtui's round: the run's starts say what it was made with
        for i, prompt in enumerate(round_settings(old)["prompts"]):
            (base / f"prompt{i:02d}_00.png").write_bytes(b"png")
        start = RunStarted(run_dir=str(run), profile=old.model_dump(mode="json"), hardware={}, versions={}, total_steps=20)
        (run / "events.jsonl").write_text(json.dumps(start.to_dict()) + "\n", encoding="utf-8")
    evaluation = Evaluation(now, run, [], torch.device("cpu"), lambda event: None)
    assert evaluation.base_difference() is None
    assert evaluation.scale["clip_model"] == "./scorers/clip" and evaluation.settings.clip_model == str(tmp_path / "scorers" / "clip")
    rounds = [SamplesScored(step=0, scores={"subject": 0.1, "clip_t": 0.3}, settings=round_settings(old)),
              SamplesScored(step=10, scores={"subject": 0.4, "clip_t": 0.3}, settings=round_settings(old)),
              SamplesScored(step=20, scores={"subject": 0.5, "clip_t": 0.3}, settings=evaluation.scale)]
    best = best_step(rounds)
    assert best is not None and best.qualifying == (20, 10)
    # Another folder of that name is another scorer: its base round is scored again.
    (tmp_path / "elsewhere" / "scorers" / "clip").mkdir(parents=True)
    other = tiny_profile(tmp_path, evaluation={**scorers, "clip_model": str(tmp_path / "elsewhere" / "scorers" / "clip")})
    assert "clip_model" in (Evaluation(other, run, [], torch.device("cpu"), lambda event: None).base_difference() or "")


@pytest.mark.parametrize(("said", "offline"), [({"HF_HUB_OFFLINE": "false"}, False), ({"HF_HUB_OFFLINE": "no"}, False),
                                               ({"HF_HUB_OFFLINE": "yes"}, True), ({"TRANSFORMERS_OFFLINE": "1"}, True)])
def test_the_scorer_reads_offline_as_the_rest_of_dbtui(monkeypatch: pytest.MonkeyPatch, said: dict, offline: bool) -> None:
    """HF_HUB_OFFLINE=false read as offline for the scorer alone, which skipped scoring ('offline, and not in the
    Hugging Face cache') where dbtui downloaded its model; TRANSFORMERS_OFFLINE=1 set after huggingface_hub's
    import was not read, and the scorer waited on the hub."""
    import contextlib
    import socket

    from huggingface_hub import constants

    import engine.evaluation.scorers as scorers_module
    from engine.support.hub_snapshot import hub_offline

    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in said.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # as huggingface_hub read it at its import
    monkeypatch.setattr(socket, "create_connection", lambda *args, **kwargs: contextlib.nullcontext())  # a host answers
    scorers_module._hub_reachable.cache_clear()
    try:
        assert hub_offline() is offline
        assert scorers_module._hub_reachable() is not offline
    finally:
        scorers_module._hub_reachable.cache_clear()
