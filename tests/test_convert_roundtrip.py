"""diffusers → single file → diffusers, through diffusers' own single-file loader and ours."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
import yaml
from convert_helpers import assert_same_weights, load_components, random_sd1, random_sd2v  # noqa: F401
from safetensors import safe_open

from engine.convert import NotEnoughDiskError, export_single_file, import_single_file
from engine.events import PhaseFinished, PhaseProgress, PhaseStarted


def _file_keys(path: Path) -> dict[str, tuple[int, ...]]:
    with safe_open(str(path), framework="pt") as file:
        return {k: tuple(file.get_slice(k).get_shape()) for k in file.keys()}


def _from_single_file(path: Path, config: Path):
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_single_file(str(path), config=str(config), local_files_only=True)
    return {name: getattr(pipe, name).state_dict() for name in ("unet", "vae", "text_encoder")}


@pytest.mark.parametrize("model", ["random_sd1", "random_sd2v"])
def test_round_trip_through_diffusers_loader_is_bit_identical(model: str, request, tmp_path: Path) -> None:
    folder = request.getfixturevalue(model)
    events = []
    out = export_single_file(folder, tmp_path / "model.safetensors", emit=events.append)
    assert_same_weights(load_components(folder), _from_single_file(out, folder))
    assert isinstance(events[0], PhaseStarted) and events[0].phase == "convert"  # inside a run's "export" phase
    assert [e.done for e in events if isinstance(e, PhaseProgress)] == [1, 2, 3, 4]
    assert isinstance(events[-1], PhaseFinished)
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask  # not owner-only, as safetensors writes


def test_half_export_is_half_the_size_and_within_fp16_rounding(random_sd1: Path, tmp_path: Path) -> None:
    full = export_single_file(random_sd1, tmp_path / "full.safetensors")
    half = export_single_file(random_sd1, tmp_path / "half.safetensors", half=True)
    assert half.stat().st_size < 0.55 * full.stat().st_size
    with safe_open(str(half), framework="pt") as file:
        assert all(file.get_tensor(k).dtype == torch.float16 for k in file.keys())
    assert_same_weights(load_components(random_sd1), _from_single_file(half, random_sd1), half=True)


def test_sd1_layout_matches_original_stable_diffusion(random_sd1: Path, tmp_path: Path) -> None:
    keys = _file_keys(export_single_file(random_sd1, tmp_path / "m.safetensors"))
    source = load_components(random_sd1)
    by_prefix = {
        "model.diffusion_model.": "unet",
        "first_stage_model.": "vae",
        "cond_stage_model.transformer.text_model.": "text_encoder",
    }
    assert all(k.startswith(tuple(by_prefix)) for k in keys)
    for prefix, name in by_prefix.items():  # one file tensor per model tensor, none dropped
        assert sum(k.startswith(prefix) for k in keys) == len(source[name]), name
    u, v, t = "model.diffusion_model.", "first_stage_model.", "cond_stage_model.transformer.text_model."
    expected = {
        # UNet (tiny: 2 levels, 2 layers per block, cross-attention 32, conv projections like SD1)
        u + "time_embed.0.weight": (128, 32),
        u + "input_blocks.0.0.weight": (32, 4, 3, 3),
        u + "input_blocks.1.0.in_layers.0.weight": (32,),
        u + "input_blocks.1.0.emb_layers.1.weight": (32, 128),
        u + "input_blocks.1.1.proj_in.weight": (32, 32, 1, 1),
        u + "input_blocks.2.1.transformer_blocks.0.attn2.to_k.weight": (32, 32),
        u + "input_blocks.3.0.op.weight": (32, 32, 3, 3),
        u + "input_blocks.4.0.skip_connection.weight": (64, 32, 1, 1),
        u + "middle_block.1.transformer_blocks.0.ff.net.0.proj.weight": (512, 64),
        u + "middle_block.2.out_layers.3.weight": (64, 64, 3, 3),
        u + "output_blocks.2.1.conv.weight": None,
        u + "output_blocks.2.2.conv.weight": (64, 64, 3, 3),
        u + "output_blocks.5.1.proj_out.weight": (32, 32, 1, 1),
        u + "out.0.weight": (32,),
        u + "out.2.weight": (4, 32, 3, 3),
        # VAE (2 levels; decoder levels counted from the bottom; 1x1-conv mid attention)
        v + "encoder.down.0.block.0.conv1.weight": (32, 32, 3, 3),
        v + "encoder.down.0.downsample.conv.weight": (32, 32, 3, 3),
        v + "encoder.down.1.block.0.nin_shortcut.weight": (64, 32, 1, 1),
        v + "encoder.mid.attn_1.q.weight": (64, 64, 1, 1),
        v + "encoder.mid.block_2.norm2.weight": (64,),
        v + "encoder.norm_out.weight": (64,),
        v + "decoder.up.1.upsample.conv.weight": (64, 64, 3, 3),
        v + "decoder.up.0.block.0.nin_shortcut.weight": (32, 64, 1, 1),
        v + "decoder.mid.attn_1.proj_out.weight": (64, 64, 1, 1),
        v + "quant_conv.weight": (8, 8, 1, 1),
        v + "post_quant_conv.weight": (4, 4, 1, 1),
        # CLIP text encoder, transformers names under text_model.
        t + "embeddings.token_embedding.weight": (514, 32),
        t + "embeddings.position_embedding.weight": (77, 32),
        t + "encoder.layers.1.self_attn.q_proj.weight": (32, 32),
        t + "encoder.layers.0.mlp.fc1.weight": (37, 32),
        t + "final_layer_norm.weight": (32,),
    }
    for key, shape in expected.items():
        if shape is None:
            assert key not in keys  # the upsampler of an attention block sits at .2, not .1
        else:
            assert keys[key] == shape, key


def test_sd2_layout_uses_openclip_names_and_pads_the_last_layer(random_sd2v: Path, tmp_path: Path) -> None:
    said = []
    out = export_single_file(random_sd2v, tmp_path / "m.safetensors", emit=said.append)
    assert [e.message for e in said if e.kind == "warning"] == ["m.yaml was written beside m.safetensors: it says the "
                                                                 "model predicts v"]
    keys = _file_keys(out)
    m = "cond_stage_model.model."
    assert not any(k.startswith("cond_stage_model.transformer.") for k in keys)
    assert keys[m + "token_embedding.weight"] == (514, 32)
    assert keys[m + "positional_embedding"] == (77, 32)
    assert keys[m + "transformer.resblocks.0.attn.in_proj_weight"] == (96, 32)
    assert keys[m + "transformer.resblocks.0.attn.in_proj_bias"] == (96,)
    assert keys[m + "transformer.resblocks.1.mlp.c_fc.weight"] == (37, 32)
    assert keys[m + "transformer.resblocks.1.ln_2.bias"] == (32,)
    assert keys[m + "ln_final.weight"] == (32,)
    assert keys[m + "text_projection"] == (32, 32)
    assert keys[m + "logit_scale"] == ()
    assert keys["model.diffusion_model.input_blocks.1.1.proj_in.weight"] == (32, 32)  # linear projection
    with safe_open(str(out), framework="pt") as file:
        # the original OpenCLIP has one layer more than diffusers keeps: a copy of the last one
        for name in ("attn.in_proj_weight", "mlp.c_proj.bias", "ln_1.weight"):
            assert torch.equal(file.get_tensor(f"{m}transformer.resblocks.2.{name}"),
                               file.get_tensor(f"{m}transformer.resblocks.1.{name}"))
        layer0 = file.get_tensor(m + "transformer.resblocks.0.attn.in_proj_weight")
        metadata = file.metadata()
    source = load_components(random_sd2v)["text_encoder"]
    q = source.get("encoder.layers.0.self_attn.q_proj.weight", source.get("text_model.encoder.layers.0.self_attn.q_proj.weight"))
    assert torch.equal(layer0[:32], q)
    assert metadata["dbtui.family"] == "sd2-v" and metadata["dbtui.prediction_type"] == "v_prediction"
    sidecar = yaml.safe_load(out.with_suffix(".yaml").read_text())
    assert sidecar["model"]["params"]["parameterization"] == "v"


def test_a_yaml_of_the_users_beside_an_sd2v_file_is_kept_unless_overwrite_is_said(random_sd2v: Path, tmp_path: Path) -> None:
    """`convert to-single-file` kept an existing model file without --overwrite but replaced its same-named .yaml."""
    from engine.convert import ConvertError

    notes = tmp_path / "m.yaml"
    notes.write_text("my notes")
    with pytest.raises(ConvertError, match="m.yaml already exists and is kept"):
        export_single_file(random_sd2v, tmp_path / "m.safetensors", overwrite=False)
    assert notes.read_text() == "my notes" and not (tmp_path / "m.safetensors").exists()
    notes.unlink()
    export_single_file(random_sd2v, tmp_path / "m.safetensors", overwrite=False)
    (tmp_path / "m.safetensors").unlink()
    export_single_file(random_sd2v, tmp_path / "m.safetensors", overwrite=False, half=True)  # its own .yaml again: no change
    assert yaml.safe_load(notes.read_text())["model"]["params"]["parameterization"] == "v"



def test_an_sd2v_yaml_left_beside_another_model_is_removed_with_overwrite_and_refused_without(
        random_sd1: Path, random_sd2v: Path, tmp_path: Path) -> None:
    """An epsilon model written over an SD2.x-v one kept its v .yaml: AUTOMATIC1111 read it, and drew noise."""
    from engine.convert import ConvertError

    export_single_file(random_sd2v, tmp_path / "m.safetensors")
    with pytest.raises(ConvertError, match="m.yaml is there, the v-prediction config of another model"):
        export_single_file(random_sd1, tmp_path / "m.ckpt", fmt="ckpt", overwrite=False)
    assert (tmp_path / "m.yaml").is_file() and not (tmp_path / "m.ckpt").exists()
    export_single_file(random_sd1, tmp_path / "m.safetensors", overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]
    notes = tmp_path / "m.yaml"  # a .yaml of the user's own is theirs, overwrite or not
    notes.write_text("my config")
    export_single_file(random_sd1, tmp_path / "m.safetensors", overwrite=True)
    assert notes.read_text() == "my config"

def test_import_round_trip_and_metadata(random_sd2v: Path, tmp_path: Path) -> None:
    out = export_single_file(random_sd2v, tmp_path / "m.safetensors", metadata={"dbtui.base_model": "tiny"})
    with safe_open(str(out), framework="pt") as file:
        assert file.metadata()["dbtui.base_model"] == "tiny"
    events = []
    folder = import_single_file(out, tmp_path / "back", config=random_sd2v, emit=events.append)
    assert_same_weights(load_components(random_sd2v), load_components(folder))
    assert "v-prediction" in events[0].description  # detected from the sidecar .yaml
    scheduler = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
    assert scheduler["prediction_type"] == "v_prediction"
    from transformers import CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(folder / "tokenizer")  # the config folder's, not an empty one
    assert tokenizer("a b").input_ids == CLIPTokenizer.from_pretrained(random_sd2v / "tokenizer")("a b").input_ids
    assert len(tokenizer) == 514
    umask = os.umask(0)
    os.umask(umask)
    assert all(f.stat().st_mode & 0o777 == 0o666 & ~umask for f in folder.rglob("*") if f.is_file())


def test_ckpt_export_imports_back(random_sd1: Path, tmp_path: Path) -> None:
    out = export_single_file(random_sd1, tmp_path / "m.ckpt", fmt="ckpt", half=True)
    data = torch.load(out, weights_only=True)
    assert data["dbtui_metadata"]["dbtui.family"] == "sd1"
    folder = import_single_file(out, tmp_path / "back", config=random_sd1)
    assert_same_weights(load_components(random_sd1), load_components(folder), half=True)


def test_too_little_disk_leaves_no_output(random_sd1: Path, tmp_path: Path, monkeypatch) -> None:
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _: usage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(NotEnoughDiskError, match=r"needs about [0-9.]+ MB, 1.0 kB is free"):
        export_single_file(random_sd1, tmp_path / "out" / "m.safetensors")
    assert list((tmp_path / "out").iterdir()) == []


class _Records(logging.Handler):
    """What diffusers logs (its loggers do not propagate to pytest's, and write to the stderr of its import)."""

    def __init__(self) -> None:
        super().__init__()
        self.said: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.said.append(record.getMessage())


@contextmanager
def _fetch_errors() -> Iterator[list[str]]:
    """The lines diffusers logs meanwhile that read as a failed load: "An error occurred while trying to fetch … no file
    named diffusion_pytorch_model.safetensors" and "Defaulting to unsafe serialization", said of a part with .bin
    weights alone."""
    records, errors = _Records(), []
    logging.getLogger("diffusers").addHandler(records)
    try:
        yield errors
    finally:
        logging.getLogger("diffusers").removeHandler(records)
        errors += [line for line in records.said if "An error occurred" in line or "unsafe serialization" in line]


@pytest.fixture(scope="module")
def bin_sd1(random_sd1: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: F811
    """random_sd1 saved as an older save_pretrained saved it: its UNet and VAE as .bin alone."""
    from diffusers import StableDiffusionPipeline

    folder = tmp_path_factory.mktemp("bin") / "model"
    StableDiffusionPipeline.from_pretrained(random_sd1, local_files_only=True).save_pretrained(
        folder, safe_serialization=False)
    assert list((folder / "unet").glob("*.bin")) and not list((folder / "unet").glob("*.safetensors"))
    return folder


def test_a_folder_of_bin_weights_converts_without_diffusers_fetch_errors(random_sd1: Path, bin_sd1: Path,
                                                                        tmp_path: Path) -> None:
    """`dbtui convert to-single-file` of a folder holding .bin weights printed diffusers' "An error occurred while trying
    to fetch … no file named diffusion_pytorch_model.safetensors" and "Defaulting to unsafe serialization" for each
    part, which read as failures of a load that was right. The file it writes is the safetensors folder's."""
    from safetensors.torch import load_file

    from dbtui.cli import main

    with _fetch_errors() as errors:
        assert main(["convert", "to-single-file", str(bin_sd1), str(tmp_path / "bin.safetensors")]) == 0
    assert not errors
    export_single_file(random_sd1, tmp_path / "safe.safetensors")
    got, want = load_file(tmp_path / "bin.safetensors"), load_file(tmp_path / "safe.safetensors")
    assert got.keys() == want.keys() and all(torch.equal(got[key], want[key]) for key in want)


def test_training_loads_a_folder_of_bin_weights_without_diffusers_fetch_errors(random_sd1: Path, bin_sd1: Path,
                                                                               tmp_path: Path) -> None:
    """`dbtui run` of a model whose UNet and VAE are .bin alone (an older save_pretrained or hub repo, which training
    downloads) printed the same "An error occurred while trying to fetch" lines as convert did, for each part."""
    from engine.models.parts import load_unet, load_vae

    with _fetch_errors() as errors:
        unet, vae = load_unet(bin_sd1), load_vae(bin_sd1)
        load_vae(tmp_path / "vae-override", str(bin_sd1))  # model.vae naming a model with a vae/ part
    assert not errors
    assert torch.equal(unet.conv_in.weight, load_unet(random_sd1).conv_in.weight)
    assert torch.equal(vae.decoder.conv_out.weight, load_vae(random_sd1).decoder.conv_out.weight)


def test_a_vae_folder_of_bin_weights_converts_in_without_diffusers_fetch_errors(random_sd1: Path, bin_sd1: Path,
                                                                               tmp_path: Path) -> None:
    """`dbtui convert to-diffusers FILE OUT --vae FOLDER`, FOLDER's VAE .bin alone, printed the same lines."""
    from dbtui.cli import main
    from engine.models.parts import load_vae

    export_single_file(random_sd1, tmp_path / "m.safetensors")
    with _fetch_errors() as errors:
        assert main(["convert", "to-diffusers", str(tmp_path / "m.safetensors"), str(tmp_path / "out"),
                     "--config", str(random_sd1), "--vae", str(bin_sd1)]) == 0
    assert not errors
    assert torch.equal(load_vae(tmp_path / "out").decoder.conv_out.weight, load_vae(random_sd1).decoder.conv_out.weight)


def test_a_checkpoint_part_of_bin_weights_is_restored_without_diffusers_fetch_errors(random_sd1: Path, bin_sd1: Path,
                                                                                     tmp_path: Path) -> None:
    """Resume and the exports read a checkpoint's full weights of a part back (restore_part); one saved as .bin printed
    the same lines."""
    import shutil

    from engine.models.parts import load_unet
    from engine.runs.restore_part import restore_part

    shutil.copytree(bin_sd1 / "unet", tmp_path / "checkpoint" / "unet")
    unet = load_unet(random_sd1)
    torch.nn.init.zeros_(unet.conv_in.weight)
    with _fetch_errors() as errors:
        restore_part(unet, "unet", tmp_path / "checkpoint")
    assert not errors
    assert torch.equal(unet.conv_in.weight, load_unet(random_sd1).conv_in.weight)
