"""The diffusers folders dbtui writes keep CLIPTextModel's published ``text_model.`` names, which transformers 4
needs: under transformers 5, save_pretrained drops them and a 4.x loader ran a random text encoder."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from convert_helpers import assert_same_weights, load_components, random_sd1  # noqa: F401
from safetensors import safe_open

from engine.convert import export_single_file, import_single_file
from engine.convert.clip_text_names import publish_clip_text_names


def _keys(model_dir: Path) -> list[str]:
    keys = []
    for path in sorted(model_dir.glob("*.safetensors")):
        with safe_open(str(path), framework="pt") as file:
            keys += list(file.keys())
    return keys


def _same(expected: dict[str, torch.Tensor], got: dict[str, torch.Tensor]) -> bool:
    return expected.keys() == got.keys() and all(torch.equal(expected[k], got[k]) for k in expected)


def test_convert_to_diffusers_writes_text_model_names_that_load_back_identically(random_sd1: Path, tmp_path: Path) -> None:
    out = import_single_file(export_single_file(random_sd1, tmp_path / "m.safetensors"), tmp_path / "diffusers", config=random_sd1)
    keys = _keys(out / "text_encoder")
    assert keys and all(key.startswith("text_model.") for key in keys)
    assert_same_weights(load_components(random_sd1), load_components(out))
    # and its tokenizer's files for transformers 4's CLIPTokenizer (tests/test_older_readers.py loads them there)
    assert (out / "tokenizer" / "merges.txt").read_text(encoding="utf-8").startswith("#version: 0.2\n")
    assert (out / "tokenizer" / "vocab.json").is_file()


def test_a_runs_sdxl_pipeline_prefixes_its_first_encoder_only_and_reads_back(tiny_sdxl: Path, tmp_path: Path) -> None:
    from diffusers import DiffusionPipeline

    from engine.models.loading import load_components as load_training_components
    from engine.training.outputs import save_pipeline

    components = load_training_components(tiny_sdxl)
    encoders = list(components.text_encoders)
    save_pipeline(tmp_path / "out", components, components.unet, encoders, vae=components.vae, unet_half=False)
    assert all(key.startswith("text_model.") for key in _keys(tmp_path / "out" / "text_encoder"))
    encoders[1].save_pretrained(tmp_path / "plain")  # CLIPTextModelWithProjection: its own names are the published ones
    assert _keys(tmp_path / "out" / "text_encoder_2") == _keys(tmp_path / "plain")
    pipe = DiffusionPipeline.from_pretrained(tmp_path / "out")
    assert _same(encoders[0].state_dict(), pipe.text_encoder.state_dict())
    assert _same(encoders[1].state_dict(), pipe.text_encoder_2.state_dict())


def test_sharded_text_encoder_keeps_its_index_and_dtype(tmp_path: Path) -> None:
    from transformers import CLIPTextModel

    from engine.builtin.tiny_model import build_pipeline

    model = build_pipeline(variant="sd1").text_encoder.to(torch.float16)
    model.save_pretrained(tmp_path, max_shard_size="20KB")
    publish_clip_text_names(tmp_path)
    index = json.loads((tmp_path / "model.safetensors.index.json").read_text(encoding="utf-8"))["weight_map"]
    assert len(list(tmp_path.glob("*.safetensors"))) > 1
    assert sorted(index) == sorted(_keys(tmp_path)) and all(key.startswith("text_model.") for key in index)
    for path in tmp_path.glob("*.safetensors"):
        with safe_open(str(path), framework="pt") as file:
            assert all(file.get_tensor(key).dtype == torch.float16 for key in file.keys())
    assert _same(model.state_dict(), CLIPTextModel.from_pretrained(tmp_path, dtype=torch.float16).state_dict())
