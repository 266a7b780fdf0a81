"""A resume whose model folder was copied or moved elsewhere: the same weights, told by the identity the checkpoint's
manifest records, are taken from the new place; another model is refused as before."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file

from engine.runs.base_identity import base_model_record
from engine.runs.folder import RunFolder, RunFolderError
from engine.runs.launcher import _prepare
from engine.runs.resume_changes import resume_warnings
from engine.runs.resume_point import check_same_model
from tests.runs_helpers import run_with_checkpoints
from tests.training_helpers import tiny_profile

TRAINING = {"max_train_steps": 2000}


def _trained_on(tmp_path: Path, tiny_sd1: Path, recorded: bool = True) -> tuple[RunFolder, Path]:
    """A stopped run whose checkpoint was trained on a copy of the tiny model, moved since; returns it and the copy's
    new place."""
    trained_at, moved_to = tmp_path / "m0", tmp_path / "m2"
    shutil.copytree(tiny_sd1, trained_at)
    folder, _ = run_with_checkpoints(tmp_path, [4])
    profile = tiny_profile(tmp_path, training=TRAINING, model={"pretrained": str(trained_at)})
    manifest = folder.checkpoints / "step-00000004" / "manifest.json"
    record = {"profile": profile.model_dump(mode="json")}
    if recorded:
        record["base_model"] = base_model_record(str(trained_at), trained_at)
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), **record}))
    trained_at.rename(moved_to)
    return folder, moved_to


def test_a_resume_from_the_models_copied_or_moved_folder_is_taken_and_kept_in_the_runs_profile(
        tmp_path: Path, tiny_sd1: Path) -> None:
    """It was refused as "trained with model …/m0, not …/m2", though the folder held the same files."""
    folder, moved_to = _trained_on(tmp_path, tiny_sd1)
    copied_to = tmp_path / "m1"
    shutil.copytree(moved_to, copied_to)
    check_same_model(folder, tiny_profile(tmp_path, training=TRAINING, model={"pretrained": str(copied_to)}))
    _prepare(folder, tiny_profile(tmp_path, training=TRAINING, model={"pretrained": str(moved_to)}), "latest", None)
    assert f'pretrained = "{moved_to}"' in folder.profile.read_text()  # later resumes and exports read it there


def test_another_model_or_a_manifest_without_the_identity_is_still_refused(tmp_path: Path, tiny_sd1: Path) -> None:
    folder, moved_to = _trained_on(tmp_path, tiny_sd1)
    other = tmp_path / "other"
    shutil.copytree(moved_to, other)
    weights = other / "unet" / "diffusion_pytorch_model.safetensors"
    save_file({name: tensor + 1 for name, tensor in load_file(weights).items()}, weights)
    with pytest.raises(RunFolderError, match=f"trained with model {tmp_path / 'm0'}, not {other}"):
        check_same_model(folder, tiny_profile(tmp_path, training=TRAINING, model={"pretrained": str(other)}))
    before = tmp_path / "before"  # a run whose checkpoints predate the record: judged by the path, as before
    before.mkdir()
    folder, moved_to = _trained_on(before, tiny_sd1, recorded=False)
    with pytest.raises(RunFolderError, match=f"trained with model {before / 'm0'}, not {moved_to}"):
        check_same_model(folder, tiny_profile(before, training=TRAINING, model={"pretrained": str(moved_to)}))


def test_the_resume_says_the_model_is_now_read_from_its_new_place(tmp_path: Path, tiny_sd1: Path) -> None:
    record = base_model_record(str(tmp_path / "m0"), tiny_sd1)
    manifest = {"step": 4, "base_model": record}
    profile = tiny_profile(tmp_path)
    [said] = resume_warnings(manifest, profile, 1, 6, base_model={**record, "pretrained": str(tmp_path / "m2")})
    assert said.message.startswith(f"the base model is now read from {tmp_path / 'm2'}, which holds the same weights")
    assert resume_warnings(manifest, profile, 1, 6, base_model=record) == []
    assert resume_warnings(manifest, profile, 1, 6, base_model={**record, "identity": "another"}) == []


def test_a_resume_after_the_base_models_prediction_type_was_edited_is_refused(tmp_path: Path, tiny_sd1: Path) -> None:
    """An SD2.x model converted as epsilon and found to predict v: its scheduler_config.json edited in place, the resume
    went on silently with the other target (v after epsilon) on the same checkpoint, as the weights' identity is the
    denoiser's alone."""
    model = tmp_path / "m0"
    shutil.copytree(tiny_sd1, model)
    folder, _ = run_with_checkpoints(tmp_path, [4])
    profile = tiny_profile(tmp_path, training=TRAINING, model={"pretrained": str(model)})
    manifest = folder.checkpoints / "step-00000004" / "manifest.json"
    record = {"profile": profile.model_dump(mode="json"), "base_model": base_model_record(str(model), model)}
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), **record}))
    check_same_model(folder, profile)  # unchanged: resumed
    config = model / "scheduler" / "scheduler_config.json"
    config.write_text(config.read_text().replace('"epsilon"', '"v_prediction"'))
    with pytest.raises(RunFolderError, match="trained with a base model predicting epsilon, not v_prediction as"):
        check_same_model(folder, profile)
