"""The base model a run was trained on is recorded by its files, and beside each export; that dbtui export merges
trained weights into it only is tested in test_export_settings.py, which shares a trained run."""

from __future__ import annotations

import json
from pathlib import Path

from engine.runs.base_identity import base_model_identity


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
