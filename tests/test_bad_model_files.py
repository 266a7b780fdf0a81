"""Broken model files get a message that says what is wrong (exit 2), never a traceback."""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import zipfile
from pathlib import Path

import pytest
import torch
from convert_helpers import random_sd1  # noqa: F401
from safetensors.torch import load_file

from dbtui.cli import main
from engine.convert import CheckpointReadError, export_single_file

TENSORS = {"model.diffusion_model.input_blocks.0.0.weight": torch.randn(8, 4, 3, 3), "x": torch.zeros(16)}
# The header of a whole SD1.x file at its least: a tensor of each part, the VAE and the text encoder beside the UNet.
WHOLE = {**TENSORS, "first_stage_model.encoder.conv_in.weight": torch.zeros(8, 3, 3, 3),
         "cond_stage_model.transformer.text_model.final_layer_norm.weight": torch.zeros(8)}


def _safetensors_bytes() -> bytes:
    from safetensors.torch import save

    return save(TENSORS)


def _ckpt_bytes() -> bytes:
    buffer = io.BytesIO()
    torch.save({"state_dict": TENSORS}, buffer)
    return buffer.getvalue()


def _with_header_length(data: bytes, length: int) -> bytes:
    return length.to_bytes(8, "little") + data[8:]


def _zip_without_pickle() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("model/readme.txt", "weights are elsewhere")
    return buffer.getvalue()


def _bad_json_header() -> bytes:
    header = b'{"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]'  # no closing brace
    return len(header).to_bytes(8, "little") + header + b"\0" * 4


CASES = {
    "empty": (b"", "is empty (0 bytes)"),
    "absurd header length": (_with_header_length(_safetensors_bytes(), 2**60), "header length field says"),
    "header longer than the file": (_with_header_length(_safetensors_bytes(), 10_000), "has only"),
    "truncated safetensors": (_safetensors_bytes()[:-100], "is truncated: its header describes 1,216 bytes of tensor data, "
                                                           "but the file has 1,116"),
    "header not JSON": (_bad_json_header(), "header is not valid JSON"),
    "web page": (b"<!DOCTYPE html><html><body>Sign in to download</body></html>", "is a web page (HTML)"),
    "text file": (b"model: sd15\nsteps: 1000\n", "is a text file"),
    "zip, not a checkpoint": (_zip_without_pickle(), "is a ZIP archive, not a PyTorch checkpoint"),
    "truncated torch zip": (_ckpt_bytes()[:300], "ZIP archive (as PyTorch checkpoints are) but truncated"),
    "git lfs pointer": (b"version https://git-lfs.github.com/spec/v1\noid sha256:ab\nsize 4\n", "Git LFS pointer"),
    "random bytes": (bytes(range(7, 200)), "neither a safetensors file nor a PyTorch checkpoint"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_to_diffusers_says_what_is_wrong_with_the_file(case: str, tmp_path: Path, capsys) -> None:
    data, expected = CASES[case]
    source = tmp_path / "model.safetensors"
    source.write_bytes(data)
    assert main(["convert", "to-diffusers", str(source), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert expected in err
    assert "not a checkpoint dbtui can read" not in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("case", ["empty", "truncated safetensors", "web page"])
def test_lora_to_kohya_says_what_is_wrong_with_the_file(case: str, tmp_path: Path, capsys) -> None:
    data, expected = CASES[case]
    source = tmp_path / "pytorch_lora_weights.safetensors"
    source.write_bytes(data)
    assert main(["convert", "lora-to-kohya", str(tmp_path), str(tmp_path / "k.safetensors")]) == 2
    assert expected in capsys.readouterr().err
    assert not (tmp_path / "k.safetensors").exists()


class _RunsCode:
    def __reduce__(self):
        return (os.getcwd, ())


def test_unsafe_pickle_is_still_refused_as_unsafe(tmp_path: Path, capsys) -> None:
    source = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {"x": _RunsCode()}}, source)
    assert main(["convert", "to-diffusers", str(source), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "needs more than tensors" in err and "getcwd" in err


def test_a_folder_is_not_a_checkpoint(tmp_path: Path, capsys) -> None:
    assert main(["convert", "to-diffusers", str(tmp_path), str(tmp_path / "out")]) == 2
    assert "is a folder; give the checkpoint file" in capsys.readouterr().err


@pytest.mark.parametrize(("name", "case"), [("model.safetensors", "empty"), ("download.html", "web page")])
def test_model_pretrained_single_file_says_what_is_wrong(name: str, case: str, tmp_path: Path) -> None:
    from engine.models.loading import resolve_model_folder

    data, expected = CASES[case]
    source = tmp_path / name
    source.write_bytes(data)
    with pytest.raises(CheckpointReadError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        resolve_model_folder(str(source), work_dir=tmp_path / "work")
    assert not (tmp_path / "work").exists() or not any((tmp_path / "work").iterdir())


@pytest.fixture(scope="module")
def single_file(random_sd1: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: F811
    return export_single_file(random_sd1, tmp_path_factory.mktemp("single") / "model.safetensors")


@pytest.mark.parametrize(
    ("dropped", "expected"),
    [
        ("first_stage_model.decoder.", "the VAE lacks 68 of 124 tensors (first_stage_model.decoder.*)"),
        ("first_stage_model.", "has no VAE weights (first_stage_model.*)"),  # a "pruned, no VAE" file
        ("model.diffusion_model.output_blocks.1.", "the UNet lacks 38 of 434 tensors (model.diffusion_model.output_blocks.1.*)"),
        ("cond_stage_model.transformer.text_model.encoder.layers.1.",
         "the text encoder lacks 16 of 36 tensors (cond_stage_model.transformer.text_model.encoder.layers.1.*)"),
    ],
)
def test_missing_weights_are_named_in_our_words(
    single_file: Path, random_sd1: Path, dropped: str, expected: str, tmp_path: Path, capsys  # noqa: F811
) -> None:
    weights = {k: v for k, v in load_file(single_file).items() if not k.startswith(dropped)}
    source = tmp_path / "partial.ckpt"
    torch.save({"state_dict": weights, "global_step": 10}, source)
    out = tmp_path / "out"
    assert main(["convert", "to-diffusers", str(source), str(out), "--config", str(random_sd1)]) == 2
    err = capsys.readouterr().err
    assert expected in err and "get the full checkpoint" in err
    assert "ignore_mismatched_sizes" not in err and "meta tensor" not in err
    assert not out.exists()


def test_another_architecture_is_named_with_shapes(single_file: Path) -> None:
    from engine.convert.expected import describe_gaps, find_gaps
    from engine.convert.to_diffusers import CONFIGS

    # The tiny model's file against the shipped full-size SD1 config.
    message = describe_gaps("tiny.safetensors", "SD1", find_gaps(load_file(single_file), CONFIGS / "sd1"))
    assert ("UNet tensors have another shape (e.g. model.diffusion_model.input_blocks.0.0.weight: 32×4×3×3 in the file, "
            "320×4×3×3 expected)") in message
    assert message.index("--config FOLDER") < message.index("get the full checkpoint")


def test_a_config_of_another_family_is_named_not_the_file(single_file: Path, tiny_sdxl: Path, tiny_sd2v: Path,
                                                          tmp_path: Path, capsys) -> None:
    """An SD1.x file given an SDXL or SD2.x folder as --config was said incomplete, with the advice to pass the
    --config just given, or to get the full checkpoint: the folder given is named as what does not fit."""
    for config in (tiny_sdxl, tiny_sd2v):
        out = tmp_path / "out"
        assert main(["convert", "to-diffusers", str(single_file), str(out), "--config", str(config)]) == 2
        err = capsys.readouterr().err
        assert f"model.safetensors, a Stable Diffusion 1.x (512 px, epsilon) file, does not fit the model --config {config} describes" in err
        assert "To fix: give as --config a diffusers model folder of the file's own architecture, or leave --config out" in err
        assert "--config FOLDER" not in err and not out.exists()


@pytest.mark.parametrize("half", [False, True])
def test_single_file_from_fp16_folder_has_one_dtype(random_sd1: Path, half: bool, tmp_path: Path) -> None:  # noqa: F811
    from diffusers import StableDiffusionPipeline

    fp16 = tmp_path / "fp16"
    StableDiffusionPipeline.from_pretrained(random_sd1, torch_dtype=torch.float16).save_pretrained(fp16)
    out = tmp_path / "model.safetensors"
    assert main(["convert", "to-single-file", str(fp16), str(out), *(["--half"] if half else [])]) == 0
    weights = load_file(out)
    dtypes = {v.dtype for v in weights.values() if v.is_floating_point()}
    assert dtypes == {torch.float16 if half else torch.float32}
    assert any(k.startswith("cond_stage_model.") for k in weights)


def _broken_inputs(single_file: Path, tmp_path: Path) -> list[Path]:
    """20 inputs: seeded random bytes (some with real format prefixes) and real files cut short."""
    real = {".safetensors": single_file.read_bytes()}
    buffer = io.BytesIO()
    torch.save({"state_dict": load_file(single_file)}, buffer)
    real[".ckpt"] = buffer.getvalue()
    prefixes = [b"", b"\x80\x02", b"PK\x03\x04", (200).to_bytes(8, "little") + b"{", b"\x80\x04\x95"]
    inputs = []
    for seed in range(20):
        rng = random.Random(seed)
        suffix = (".safetensors", ".ckpt")[seed % 2]
        if seed < 10:
            data = prefixes[seed % len(prefixes)] + rng.randbytes(rng.randrange(0, 4096))
        else:
            data = real[suffix][: rng.randrange(0, len(real[suffix]) - 1)]
        path = tmp_path / f"input-{seed}{suffix}"
        path.write_bytes(data)
        inputs.append(path)
    return inputs


def test_broken_inputs_never_crash_nor_write(single_file: Path, tmp_path: Path, capsys) -> None:
    inputs_dir = tmp_path / "inputs"
    inputs_dir.mkdir()
    for source in _broken_inputs(single_file, inputs_dir):
        before = hashlib.sha256(source.read_bytes()).hexdigest(), source.stat().st_mtime_ns
        out = tmp_path / f"out-{source.stem}"
        status = main(["convert", "to-diffusers", str(source), str(out)])
        err = capsys.readouterr().err
        assert status in (1, 2), (source.name, status, err)
        assert "Traceback" not in err and "bug in dbtui" not in err, (source.name, err)
        assert not out.exists(), source.name
        assert (hashlib.sha256(source.read_bytes()).hexdigest(), source.stat().st_mtime_ns) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inputs"]
    assert len(list(inputs_dir.iterdir())) == 20


def test_safetensors_header_check_accepts_real_files(single_file: Path) -> None:
    from engine.convert.file_format import checkpoint_kind

    assert checkpoint_kind(single_file) == "safetensors"
    header_length = int.from_bytes(single_file.read_bytes()[:8], "little")
    assert json.loads(single_file.read_bytes()[8:8 + header_length])["__metadata__"]["format"] == "pt"


def test_to_single_file_reports_a_damaged_folder_and_a_folder_as_output(
    random_sd1: Path, tmp_path: Path, capsys  # noqa: F811
) -> None:
    import shutil

    damaged = tmp_path / "damaged"
    shutil.copytree(random_sd1, damaged)
    weights = damaged / "vae" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    assert main(["convert", "to-single-file", str(damaged), str(tmp_path / "x.safetensors")]) == 2
    assert f"{damaged / 'vae'} cannot be loaded" in capsys.readouterr().err
    folder = tmp_path / "taken"
    folder.mkdir()
    assert main(["convert", "to-single-file", str(random_sd1), str(folder)]) == 2
    assert "is a folder; give the name of the file to write" in capsys.readouterr().err
    assert not (tmp_path / "x.safetensors").exists() and not any(folder.iterdir())


@pytest.mark.parametrize(("left_out", "lacks"), [
    ("unet", "unet/ (its UNet2DConditionModel's config.json)"),
    # A download stopped before the UNet's weights: the load failed on them, "config or weights damaged or missing".
    ("diffusion_pytorch_model.safetensors", "unet/ (its UNet2DConditionModel's diffusion_pytorch_model.safetensors"),
])
def test_to_single_file_of_a_partial_copy_names_the_part_it_lacks(
        left_out: str, lacks: str, random_sd1: Path, tmp_path: Path, capsys) -> None:  # noqa: F811
    """A copy without unet/ was "not a diffusers model folder (it needs unet/, vae/, text_encoder/)", two of them there."""
    import shutil

    partial = tmp_path / "partial"
    shutil.copytree(random_sd1, partial, ignore=lambda folder, names: [left_out] if left_out in names and
                    Path(folder) in (random_sd1, random_sd1 / "unet") else [])
    assert main(["convert", "to-single-file", str(partial), str(tmp_path / "x.safetensors")]) == 2
    said = " ".join(capsys.readouterr().err.split())
    assert f"'{partial}' lacks {lacks}" in said and "copy that part" in said and "vae/" not in said, said
    assert not (tmp_path / "x.safetensors").exists()


@pytest.mark.parametrize(("tensors", "expected"), [
    ({"lora_unet_down_blocks_0_proj_in.lora_down.weight": torch.zeros(4, 8)}, "a LoRA, not a full model"),
    ({"first_stage_model.encoder.conv_in.weight": torch.zeros(8, 3, 3, 3)}, "a VAE on its own"),
    # A UNet in the original layout without its prefix (as ComfyUI's models/unet/ holds it), alone or beside the rest.
    ({"input_blocks.0.0.weight": torch.zeros(8, 4, 3, 3)}, "a UNet on its own"),
    ({"input_blocks.0.0.weight": torch.zeros(8, 4, 3, 3), "first_stage_model.encoder.conv_in.weight":
      torch.zeros(8, 3, 3, 3)}, "UNet's keys lack the 'model.diffusion_model.' prefix"),
    ({"conditioner.embedders.0.model.ln_final.weight": torch.zeros(8), **TENSORS}, "Stable Diffusion XL refiner"),
    # The UNet's prefix saved twice, beside the other parts: SD1.x's was told "a VAE on its own", SDXL's passed.
    *[({("model.diffusion_model." if key.startswith("model.") else "") + key: tensor for key, tensor in whole.items()},
       "UNet's keys have 'model.diffusion_model.' before 'model.diffusion_model.'") for whole in (WHOLE, {
        **TENSORS, "first_stage_model.encoder.conv_in.weight": torch.zeros(8, 3, 3, 3),
        "conditioner.embedders.0.transformer.text_model.final_layer_norm.weight": torch.zeros(8),
        "conditioner.embedders.1.model.ln_final.weight": torch.zeros(8)})],
])
def test_a_file_that_is_no_base_model_is_a_problem_before_the_run(tensors: dict, expected: str, tmp_path: Path) -> None:
    """A LoRA, a lone VAE or the refiner as model.pretrained passed `dbtui validate` ("valid"), and `run` started."""
    from safetensors.torch import save_file

    from engine.dataset.profile_paths import model_source_problems

    source = tmp_path / "model.safetensors"
    save_file(tensors, source)
    problems = model_source_problems(str(source))
    assert len(problems) == 1 and expected in problems[0].message and "takes a whole base model" in problems[0].message
    save_file(WHOLE, source)
    assert model_source_problems(str(source)) == []


@pytest.mark.parametrize("zipped", [True, False])
def test_a_pickle_that_calls_code_is_a_problem_before_the_run(zipped: bool, tmp_path: Path) -> None:
    """A .ckpt naming code beyond tensors (old ones often hold pytorch_lightning's callbacks) passed `dbtui validate`,
    and `run` started, to refuse it only at the load."""
    from engine.dataset.profile_paths import model_source_problems

    source = tmp_path / "model.ckpt"
    torch.save({"state_dict": TENSORS, "callback": _RunsCode()}, source, _use_new_zipfile_serialization=zipped)
    problems = model_source_problems(str(source))
    assert len(problems) == 1 and "needs more than tensors to load (it calls posix.getcwd)" in problems[0].message
    # A whole model's parts: a zip .ckpt's keys are read before the run too (test_pruned_model_file.py).
    torch.save({"state_dict": WHOLE, "global_step": 3}, source, _use_new_zipfile_serialization=zipped)
    assert model_source_problems(str(source)) == []


def test_a_vae_file_or_a_vae_or_tokenizer_folder_not_here_is_a_problem_before_the_run(tmp_path: Path) -> None:
    """model.vae = a .safetensors VAE passed `dbtui validate`; the run then failed saying the VAE file was "a VAE on its
    own, not a full Stable Diffusion checkpoint", as if it had been given as the base model; a model.tokenizer folder not
    here failed at the load, saying to leave out `--tokenizer`."""
    from safetensors.torch import save_file

    from engine.dataset.profile_paths import path_problems
    from engine.models.parts import ModelNotFoundError, load_vae
    from tests.training_helpers import tiny_profile

    vae = tmp_path / "vae-ft-mse-840000-ema-pruned.safetensors"
    save_file({"encoder.conv_in.weight": torch.zeros(8, 3, 3, 3)}, vae)
    for given, said in ((vae, "is a single file; model.vae takes a diffusers VAE folder"),
                        (tmp_path / "nowhere", "does not exist on this machine")):
        problems = [p for p in path_problems(tiny_profile(tmp_path, model={"pretrained": "builtin:tiny-sd1", "vae": str(given)}))
                    if p.key == "model.vae"]
        assert len(problems) == 1 and said in problems[0].message
    tokenizer = tiny_profile(tmp_path, model={"pretrained": "builtin:tiny-sd1", "tokenizer": str(tmp_path / "tok")})
    assert [p.message for p in path_problems(tokenizer) if p.key == "model.tokenizer"] == [
        f"'{tmp_path / 'tok'}' does not exist on this machine: give a diffusers tokenizer folder or a hub id"]
    with pytest.raises(ModelNotFoundError, match="stabilityai/sd-vae-ft-mse"):
        load_vae(tmp_path, str(vae))


@pytest.mark.parametrize("zipped", [True, False])
def test_a_protocol_2_pickle_of_allowed_builtins_passes_before_the_run(zipped: bool, tmp_path: Path) -> None:
    """torch.save's default protocol 2 names a set, a complex or a bytearray by Python 2's names (``__builtin__.set``),
    which torch's loader maps to allowed ones: the check before the run refused such a file, which loads."""
    from engine.convert.load_checkpoint import read_checkpoint
    from engine.dataset.profile_paths import model_source_problems

    source = tmp_path / "model.ckpt"
    torch.save({"state_dict": WHOLE, "tags": {"a", "b"}, "z": complex(1, 2), "raw": bytearray(b"x")}, source,
               _use_new_zipfile_serialization=zipped, pickle_protocol=2)
    assert read_checkpoint(source).state_dict.keys() == WHOLE.keys()
    assert model_source_problems(str(source)) == []


@pytest.mark.parametrize("zipped", [True, False])
def test_a_ckpt_renamed_safetensors_is_read_by_its_bytes(zipped: bool, tmp_path: Path, capsys) -> None:
    """torch.load reads any path named .safetensors as safetensors: a renamed .ckpt was said damaged or truncated
    ('download it again'), and one that calls code was said damaged, not refused as unsafe."""
    from engine.convert.load_checkpoint import read_checkpoint

    source = tmp_path / "model.safetensors"
    torch.save({"state_dict": TENSORS}, source, _use_new_zipfile_serialization=zipped)
    assert read_checkpoint(source).state_dict.keys() == TENSORS.keys()
    torch.save({"state_dict": {"x": _RunsCode()}}, source, _use_new_zipfile_serialization=zipped)
    assert main(["convert", "to-diffusers", str(source), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "needs more than tensors" in err and "getcwd" in err


def test_a_link_to_nowhere_is_named_as_a_link(tmp_path: Path, capsys) -> None:
    """A dangling link, which ls lists, was said 'no such file'."""
    source = tmp_path / "model.safetensors"
    source.symlink_to(tmp_path / "moved" / "model.safetensors")
    assert main(["convert", "to-diffusers", str(source), str(tmp_path / "out")]) == 2
    assert (f"{source} is a link to {tmp_path / 'moved' / 'model.safetensors'}, which is not there (moved or deleted): "
            "give the model file itself, or make the link point at it") in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_link_through_links_to_nowhere_names_the_missing_end(tmp_path: Path, capsys) -> None:
    """Only the first link's target was named, itself a link."""
    source = tmp_path / "model.safetensors"
    source.symlink_to("other.safetensors")
    (tmp_path / "other.safetensors").symlink_to(tmp_path / "moved" / "model.safetensors")
    assert main(["convert", "to-diffusers", str(source), str(tmp_path / "out")]) == 2
    assert (f"itself a link to {tmp_path / 'moved' / 'model.safetensors'}, which is not there"
            in capsys.readouterr().err)
