"""A single file whose weights are integers (a quantized model, or a header rewritten) converted to a model of noise
(weights around ±1e9) and `convert to-diffusers` said "wrote OUT"; `validate` passed it as model.pretrained. It is now
refused before anything is written, for every family, while the integer buffers real files hold stay allowed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from convert_helpers import random_sd1  # noqa: F401
from safetensors.torch import load_file, save_file
from test_flux_files import to_original, write_bfl_file

from dbtui.cli import main
from engine.convert import IntegerWeightsError, export_single_file, import_single_file
from engine.dataset.profile_paths import model_source_problems


def as_integers(source: Path, target: Path) -> Path:
    """``source`` with every float dtype in its header renamed to the integer dtype of the same size (the bytes stay)."""
    data = source.read_bytes()
    length = int.from_bytes(data[:8], "little")
    header = data[8:8 + length]
    for float_dtype, integer in ((b'"F32"', b'"I32"'), (b'"F16"', b'"I16"'), (b'"BF16"', b'"I16"')):
        header = header.replace(float_dtype, integer)
    target.write_bytes(data[:8] + header + data[8 + length:])
    return target


@pytest.mark.parametrize("family", ["sd1", "sdxl", "flux"])
def test_a_file_of_integer_weights_is_refused_before_anything_is_written(
        family: str, random_sd1: Path, request: pytest.FixtureRequest, tmp_path: Path, capsys) -> None:  # noqa: F811
    made = tmp_path / "made"
    made.mkdir()
    if family == "flux":
        tiny_flux = request.getfixturevalue("tiny_flux")
        weights = load_file(tiny_flux / "transformer" / "diffusion_pytorch_model.safetensors")
        source, options = write_bfl_file(made / "flux.safetensors", to_original(weights)), ["--components", str(tiny_flux)]
    else:
        folder = random_sd1 if family == "sd1" else request.getfixturevalue("tiny_sdxl")
        source, options = export_single_file(folder, made / f"{family}.safetensors"), ["--config", str(folder)]
    quantized = as_integers(source, tmp_path / f"{family}_int.safetensors")
    assert main(["convert", "to-diffusers", str(quantized), str(tmp_path / "out"), *options]) == 2
    err = capsys.readouterr().err
    assert f"{quantized.name} holds integer (int32) weights" in err and "a quantized model dbtui cannot import" in err
    assert "give the model's original fp16, bf16 or fp32 file" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["made", quantized.name])  # no output, no partial
    # `validate` says it of model.pretrained, from the header alone; the float file passes.
    [problem] = model_source_problems(str(quantized))
    assert f"{quantized} holds integer (int32) weights" in problem.message
    assert model_source_problems(str(source)) == []


def test_the_integer_buffers_of_real_files_stay_allowed(random_sd1: Path, tmp_path: Path) -> None:  # noqa: F811
    """CLIP's position_ids (int64, in SD1.x and SDXL files), the EMA's step counter, ComfyUI's SentencePiece model."""
    source = export_single_file(random_sd1, tmp_path / "plain.safetensors")
    weights = load_file(source)
    weights["cond_stage_model.transformer.text_model.embeddings.position_ids"] = torch.arange(77).unsqueeze(0)
    weights["model_ema.num_updates"] = torch.tensor(1000, dtype=torch.int32)
    weights["text_encoders.t5xxl.transformer.spiece_model"] = torch.zeros(16, dtype=torch.uint8)
    weights["global_step"] = torch.tensor(5)
    with_buffers = tmp_path / "buffers.safetensors"
    save_file(weights, with_buffers)
    assert model_source_problems(str(with_buffers)) == []
    out = import_single_file(with_buffers, tmp_path / "out", config=random_sd1)
    assert (out / "unet" / "config.json").is_file()
    # One integer weight among them is enough: an int8-quantized layer.
    weights["model.diffusion_model.out.2.weight"] = weights["model.diffusion_model.out.2.weight"].to(torch.int8)
    save_file(weights, with_buffers)
    with pytest.raises(IntegerWeightsError, match=r"holds integer \(int8\) weights \(model.diffusion_model.out.2.weight\)"):
        import_single_file(with_buffers, tmp_path / "again", config=random_sd1)
    assert not (tmp_path / "again").exists()


def test_a_flux_part_file_of_integer_weights_is_refused(tiny_flux: Path, tmp_path: Path, capsys) -> None:
    """--clip-l (or --vae, --t5) of integer weights, read after the transformer, is refused before it is written."""
    transformer = write_bfl_file(tmp_path / "flux1-dev.safetensors", to_original(
        load_file(tiny_flux / "transformer" / "diffusion_pytorch_model.safetensors")))
    clip = {"text_model." + k.removeprefix("text_model."): v.to(torch.int8)
            for k, v in load_file(tiny_flux / "text_encoder" / "model.safetensors").items()}
    width = json.loads((tiny_flux / "text_encoder" / "config.json").read_text())["hidden_size"]
    save_file({**clip, "text_projection.weight": torch.eye(width)}, tmp_path / "clip_l.safetensors")
    assert main(["convert", "to-diffusers", str(transformer), str(tmp_path / "flux"), "--components", str(tiny_flux),
                 "--clip-l", str(tmp_path / "clip_l.safetensors")]) == 2
    assert "clip_l.safetensors holds integer (int8) weights" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip_l.safetensors", "flux1-dev.safetensors"]
