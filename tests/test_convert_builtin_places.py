"""`dbtui convert` takes a ``builtin:`` model wherever it takes a model's place, as a profile's model.pretrained does."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file
from test_flux_files import to_original, write_bfl_file

from dbtui.cli import main


def test_components_may_be_a_builtin_flux(tmp_path: Path, tiny_flux: Path, capsys) -> None:
    # Was refused: "components 'builtin:tiny-flux' is neither a folder nor a hub id", where its built folder worked.
    weights = load_file(tiny_flux / "transformer" / "diffusion_pytorch_model.safetensors")
    file = write_bfl_file(tmp_path / "flux1-dev-mine.safetensors", to_original(weights))
    out = tmp_path / "flux"
    assert main(["convert", "to-diffusers", str(file), str(out), "--components", "builtin:tiny-flux"]) == 0, \
        capsys.readouterr().err
    imported = load_file(out / "transformer" / "diffusion_pytorch_model.safetensors")
    assert all(torch.equal(imported[key], weights[key]) for key in weights)
    for part in ("vae", "text_encoder", "text_encoder_2", "tokenizer_2"):
        assert (out / part).is_dir()


def test_an_unknown_builtin_components_names_the_builtins(tmp_path: Path, tiny_flux: Path, capsys) -> None:
    weights = load_file(tiny_flux / "transformer" / "diffusion_pytorch_model.safetensors")
    file = write_bfl_file(tmp_path / "flux1-dev-mine.safetensors", to_original(weights))
    assert main(["convert", "to-diffusers", str(file), str(tmp_path / "o"), "--components", "builtin:tiny-flx"]) == 2
    assert "unknown built-in model 'builtin:tiny-flx'; choose one of:" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_a_builtin_is_a_diffusers_folder_to_write_as_one_file_and_a_config_to_read_one_with(
        tmp_path: Path, tiny_sd1: Path, capsys) -> None:
    single = tmp_path / "tiny.safetensors"
    assert main(["convert", "to-single-file", "builtin:tiny-sd1", str(single)]) == 0, capsys.readouterr().err
    out = tmp_path / "back"
    assert main(["convert", "to-diffusers", str(single), str(out), "--config", "builtin:tiny-sd1",
                 "--tokenizer", "builtin:tiny-sd1"]) == 0, capsys.readouterr().err
    unet = load_file(out / "unet" / "diffusion_pytorch_model.safetensors")
    original = load_file(tiny_sd1 / "unet" / "diffusion_pytorch_model.safetensors")
    assert set(unet) == set(original) and all(torch.equal(unet[key], original[key].float()) for key in original)
