"""SDXL single files in and out: bit-exact through diffusers' own loader, offline, no tokenizer given."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from dbtui.cli import main
from engine.convert import UnsupportedModelError, detect_family, export_single_file, import_single_file

PARTS = ("unet", "vae", "text_encoder", "text_encoder_2")
PREFIXES = {"unet": "model.diffusion_model.", "vae": "first_stage_model.",
            "text_encoder": "conditioner.embedders.0.", "text_encoder_2": "conditioner.embedders.1."}
REFINER_ADVICE = "the SDXL refiner cannot be DreamBooth-trained; use the SDXL base model or a fine-tune of it"


@pytest.fixture(scope="module")
def random_sdxl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny SDXL with every tensor random (norms and biases too), so no swap or drop can hide."""
    from engine.builtin.tiny_sdxl import build_sdxl_pipeline

    pipe = build_sdxl_pipeline(seed=3)
    generator = torch.Generator().manual_seed(103)
    with torch.no_grad():
        for name in PARTS:
            for param in getattr(pipe, name).parameters():
                param.copy_(torch.randn(param.shape, generator=generator) * 0.3)
    folder = tmp_path_factory.mktemp("random-sdxl") / "model"
    pipe.save_pretrained(folder)
    return folder.resolve()  # diffusers' loader stays offline only for an absolute local config folder


@pytest.fixture(scope="module")
def source(random_sdxl: Path) -> dict[str, dict[str, torch.Tensor]]:
    from diffusers import StableDiffusionXLPipeline

    pipe = StableDiffusionXLPipeline.from_pretrained(random_sdxl)
    return {name: getattr(pipe, name).state_dict() for name in PARTS}


@pytest.fixture(scope="module")
def sdxl_file(random_sdxl: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_single_file(random_sdxl, tmp_path_factory.mktemp("sdxl-file") / "model.safetensors")


@pytest.fixture(scope="module")
def configs_only(random_sdxl: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny architecture's configs without weights, tokenizers or scheduler (like the shipped configs)."""
    folder = tmp_path_factory.mktemp("sdxl-config")
    for part in PARTS:
        (folder / part).mkdir()
        shutil.copyfile(random_sdxl / part / "config.json", folder / part / "config.json")
    return folder


def _assert_same(expected: dict, got: dict, *, half: bool = False) -> None:
    for name in PARTS:
        assert set(got[name]) == set(expected[name]), name
        for key, value in expected[name].items():
            want = value.half().float() if half else value
            assert torch.equal(got[name][key].float(), want), f"{name}.{key}"


@pytest.mark.parametrize("half", [False, True])
def test_single_file_round_trips_through_diffusers_loader(half: bool, random_sdxl: Path, source: dict,
                                                          tmp_path: Path, monkeypatch) -> None:
    from diffusers import StableDiffusionXLPipeline

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "model.safetensors"
    assert main(["convert", "to-single-file", str(random_sdxl), str(out)] + (["--half"] if half else [])) == 0
    weights = load_file(out)
    assert {v.dtype for v in weights.values()} == {torch.float16 if half else torch.float32}
    counts = {name: sum(k.startswith(prefix) for k in weights) for name, prefix in PREFIXES.items()}
    layers = json.loads((random_sdxl / "text_encoder_2" / "config.json").read_text())["num_hidden_layers"]
    # bigG's q, k and v (weights and biases) are fused into in_proj: 4 tensors fewer per layer.
    assert counts == {"unet": len(source["unet"]), "vae": len(source["vae"]), "text_encoder": len(source["text_encoder"]),
                      "text_encoder_2": len(source["text_encoder_2"]) - 4 * layers}
    assert sum(counts.values()) == len(weights)

    pipe = StableDiffusionXLPipeline.from_single_file(str(out), config=str(random_sdxl))
    _assert_same(source, {name: getattr(pipe, name).state_dict() for name in PARTS}, half=half)


def test_single_file_layout_is_the_original_one(sdxl_file: Path, source: dict) -> None:
    weights = load_file(sdxl_file)
    text_2 = {k.removeprefix("text_model."): v for k, v in source["text_encoder_2"].items()}
    bigg = "conditioner.embedders.1.model."
    assert torch.equal(weights[bigg + "text_projection"], text_2["text_projection.weight"].T)  # (48, 40): transposed
    assert torch.equal(weights[bigg + "transformer.resblocks.2.attn.in_proj_weight"], torch.cat(
        [text_2[f"encoder.layers.2.self_attn.{p}_proj.weight"] for p in "qkv"]))
    assert torch.equal(weights["model.diffusion_model.label_emb.0.2.bias"], source["unet"]["add_embedding.linear_2.bias"])
    clip_l = "conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight"
    assert weights[clip_l].shape[1] == 32 and weights[bigg + "token_embedding.weight"].shape[1] == 48
    assert "v_pred" not in weights
    with safe_open(str(sdxl_file), framework="pt") as file:
        assert file.metadata()["dbtui.family"] == "sdxl"
    assert detect_family(weights).id == "sdxl"


def test_to_diffusers_gives_the_same_weights_with_no_tokenizer(sdxl_file: Path, configs_only: Path, source: dict,
                                                                tmp_path: Path, capsys) -> None:
    from diffusers import StableDiffusionXLPipeline

    out = tmp_path / "back"
    assert main(["convert", "to-diffusers", str(sdxl_file), str(out), "--config", str(configs_only)]) == 0
    assert "Stable Diffusion XL" in capsys.readouterr().out
    pipe = StableDiffusionXLPipeline.from_pretrained(out)
    _assert_same(source, {name: getattr(pipe, name).state_dict() for name in PARTS})
    # Both tokenizers are CLIP's real one, built from the merges that ship with dbtui; the second pads like OpenCLIP.
    for tokenizer in (pipe.tokenizer, pipe.tokenizer_2):
        assert tokenizer("a photo of zwx dog").input_ids == [49406, 320, 1125, 539, 89, 3561, 1929, 49407]
    assert (pipe.tokenizer.pad_token, pipe.tokenizer_2.pad_token) == ("<|endoftext|>", "!")
    # No scheduler in --config: SDXL base's.
    assert type(pipe.scheduler).__name__ == "EulerDiscreteScheduler"
    assert pipe.scheduler.config.timestep_spacing == "leading" and pipe.scheduler.config.prediction_type == "epsilon"


def test_v_prediction_sdxl_keeps_its_marker_both_ways(random_sdxl: Path, tmp_path: Path) -> None:
    folder = tmp_path / "vpred"
    shutil.copytree(random_sdxl, folder)
    scheduler = folder / "scheduler" / "scheduler_config.json"
    config = json.loads(scheduler.read_text())
    scheduler.write_text(json.dumps({**config, "prediction_type": "v_prediction", "rescale_betas_zero_snr": True}))

    out = export_single_file(folder, tmp_path / "vpred.safetensors")
    weights = load_file(out)
    assert weights["v_pred"].numel() == 0 and weights["ztsnr"].numel() == 0  # what ComfyUI and A1111 read
    assert detect_family(weights).id == "sdxl-v"

    back = import_single_file(out, tmp_path / "back", config=random_sdxl)
    config = json.loads((back / "scheduler" / "scheduler_config.json").read_text())
    assert config["prediction_type"] == "v_prediction" and config["rescale_betas_zero_snr"] is True
    # An epsilon file read with that v folder as --config stays epsilon: the file says what it predicts.
    epsilon = import_single_file(export_single_file(random_sdxl, tmp_path / "eps.safetensors"), tmp_path / "eps",
                                 config=folder)
    assert json.loads((epsilon / "scheduler" / "scheduler_config.json").read_text())["prediction_type"] == "epsilon"


def test_refiner_file_is_refused(sdxl_file: Path, tmp_path: Path) -> None:
    # The refiner's only text encoder is bigG, under embedders.0 in OpenCLIP names.
    refiner = {k.replace("conditioner.embedders.1.", "conditioner.embedders.0."): v for k, v in load_file(sdxl_file).items()
               if not k.startswith("conditioner.embedders.0.")}
    save_file(refiner, tmp_path / "refiner.safetensors")
    with pytest.raises(UnsupportedModelError, match=REFINER_ADVICE):
        import_single_file(tmp_path / "refiner.safetensors", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_refiner_folder_is_refused(random_sdxl: Path, tmp_path: Path) -> None:
    folder = tmp_path / "refiner"
    shutil.copytree(random_sdxl, folder)
    shutil.rmtree(folder / "text_encoder")
    index = json.loads((folder / "model_index.json").read_text())
    index.update(_class_name="StableDiffusionXLImg2ImgPipeline", text_encoder=[None, None], requires_aesthetics_score=True)
    (folder / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(UnsupportedModelError, match=REFINER_ADVICE):
        export_single_file(folder, tmp_path / "refiner.safetensors")
    assert not (tmp_path / "refiner.safetensors").exists()


def test_a_missing_encoder_is_named(sdxl_file: Path, tmp_path: Path) -> None:
    weights = {k: v for k, v in load_file(sdxl_file).items() if not k.startswith("conditioner.embedders.1.")}
    save_file(weights, tmp_path / "no-bigg.safetensors")
    with pytest.raises(UnsupportedModelError, match=r"no second text encoder \(OpenCLIP ViT-bigG\)"):
        import_single_file(tmp_path / "no-bigg.safetensors", tmp_path / "out")
