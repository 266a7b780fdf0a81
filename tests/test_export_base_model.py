"""dbtui export merges trained weights only into the base model they were trained on: shapes alone let a LoRA of one
model merge silently into another of the same architecture."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from engine.events import Warning
from engine.runs.base_identity import OtherBaseModelError, base_model_identity
from engine.runs.folder import RunFolder
from tests.runs_helpers import dbtui, profile_file
from tests.test_export_settings import _edited


def test_weights_are_merged_only_into_the_base_model_they_were_trained_on(tmp_path: Path) -> None:
    from engine.builtin import resolve_model
    from engine.runs.export import export_checkpoint

    path = profile_file(tmp_path, training={"method": "lora", "max_train_steps": 3},
                        saving={"every_n_steps": 2, "export": ["lora_diffusers", "diffusers"]})
    assert dbtui("run", str(path), "--plain", stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT).wait(timeout=600) == 0
    folder = RunFolder(tmp_path / "runs" / "t")
    identity = base_model_identity(resolve_model("builtin:tiny-sd1"))
    manifest = json.loads((folder.checkpoints / "step-00000002" / "manifest.json").read_text())
    assert manifest["base_model"] == {"pretrained": "builtin:tiny-sd1", "identity": identity,
                                     "prediction_type": "epsilon", "family": "sd1"}
    assert json.loads((folder.outputs / "base_model.json").read_text())["identity"] == identity
    assert identity != base_model_identity(resolve_model("builtin:tiny-sd1-random"))  # same shapes, other weights

    _edited(folder, model={"pretrained": "builtin:tiny-sd1-random"})
    for step, weights in ((2, "step-00000002's weights"), (3, "the run's final weights in")):  # a checkpoint, outputs
        with pytest.raises(OtherBaseModelError, match=f"{weights}.* were trained on builtin:tiny-sd1, and the base model "
                                                      "model.pretrained names in .*builtin:tiny-sd1-random.* write "
                                                      "builtin:tiny-sd1 back as model.pretrained"):
            export_checkpoint(folder.path, step)
    assert not (folder.path / "exports" / "step-2").exists()

    # LoRA files alone hold none of the base model's weights: written as trained, with a word on the previews.
    _edited(folder, saving={"export": ["lora_diffusers", "lora_kohya"]})
    events: list[Any] = []
    assert "lora_kohya" in export_checkpoint(folder.path, 2, emit=events.append)
    [warning] = [event for event in events if isinstance(event, Warning)]
    assert "the LoRA files are written all the same" in warning.message and "previews" in warning.advice
    # What they were trained on, as RUN/outputs record it: `dbtui convert lora-to-kohya` reads its family there.
    assert json.loads((folder.path / "exports" / "step-2" / "base_model.json").read_text()) == manifest["base_model"]

    # A manifest of before dbtui recorded the base model exports as it did.
    held = json.loads((folder.checkpoints / "step-00000002" / "manifest.json").read_text())
    del held["base_model"]
    (folder.checkpoints / "step-00000002" / "manifest.json").write_text(json.dumps(held))
    _edited(folder, saving={"export": ["diffusers"]})
    assert "diffusers" in export_checkpoint(folder.path, 2)


def test_a_base_model_whose_duplicate_bin_weights_were_deleted_is_the_same_model(tmp_path: Path) -> None:
    # A clone of a hub repo holds unet/ weights as .safetensors and as .bin; diffusers loads the .safetensors only,
    # so deleting the .bin (3.4 GB of SD1.5 saved) leaves the model the run trained on.
    unet = tmp_path / "model" / "unet"
    unet.mkdir(parents=True)
    (unet / "config.json").write_text(json.dumps({"sample_size": 8, "_diffusers_version": "0.30.0"}))
    (unet / "diffusion_pytorch_model.safetensors").write_bytes(bytes(range(256)) * 1000)
    (unet / "diffusion_pytorch_model.bin").write_bytes(b"pickled" * 5000)
    both = base_model_identity(tmp_path / "model")
    (unet / "diffusion_pytorch_model.bin").unlink()
    assert base_model_identity(tmp_path / "model") == both


def test_a_step_export_records_the_base_model_so_the_kohya_converter_files_it_under_its_family(tmp_path: Path,
                                                                                             capsys) -> None:
    """`dbtui export RUN --step N` wrote no base_model.json beside its LoRA, so converting a conv-only SD2 LoRA from
    RUN/exports/step-N to kohya warned it guessed SD1."""
    from safetensors import safe_open

    from dbtui.cli import main
    from engine.runs.export import export_checkpoint
    from engine.runs.in_process import train
    from tests.training_helpers import tiny_profile

    train(tiny_profile(tmp_path, model={"pretrained": "builtin:tiny-sd2v"},
                       training={"method": "lora", "max_train_steps": 2, "lora": {"unet_targets": ["conv1", "conv2"]}},
                       saving={"export": ["lora_diffusers"]}))
    run = tmp_path / "runs" / "t"
    export_checkpoint(run, 2)
    assert json.loads((run / "exports" / "step-2" / "base_model.json").read_text())["family"] == "sd2-v"
    capsys.readouterr()
    out = tmp_path / "k.safetensors"
    assert main(["convert", "lora-to-kohya", str(run / "exports" / "step-2" / "lora"), str(out)]) == 0
    with safe_open(str(out), framework="pt") as file:
        assert file.metadata()["ss_base_model_version"] == "sd_v2"
    assert "filed under SD1" not in capsys.readouterr().err
