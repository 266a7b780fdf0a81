"""The memory meter reads model.vae as the trainer loads it (engine/models/parts.py's load_vae): a model folder without
vae/ beside a VAE folder is estimated, and a VAE of another size is counted at its own size."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from engine.memory import estimate_peak
from engine.memory.architecture import ArchitectureUnavailableError, architecture_of
from engine.memory.vae_source import vae_config_folder
from tests.training_helpers import tiny_profile


def _vae_parameters(source: str, vae: str) -> int:
    with torch.device("meta"):
        parts = architecture_of(source, vae=vae_config_folder(vae)).build()
    return sum(p.numel() for p in parts.vae.parameters())


def test_a_model_folder_without_vae_is_estimated_with_model_vae(tiny_sd1: Path, tmp_path: Path) -> None:
    """It said "not available: '…' lacks vae/config.json … copy that part", where the run trains."""
    copy = tmp_path / "no-vae"
    shutil.copytree(tiny_sd1, copy)
    shutil.rmtree(copy / "vae")
    both = {"dataset": {"resolution": 64, "cache_latents": False}}
    given = estimate_peak(tiny_profile(tmp_path, model={"pretrained": str(copy), "vae": str(tiny_sd1 / "vae")}, **both))
    own = estimate_peak(tiny_profile(tmp_path, **both))
    assert (given.weights, given.activations, given.caching, given.sampling) == (
        own.weights, own.activations, own.caching, own.sampling)


def test_a_vae_of_another_size_is_counted_at_its_own(tiny_sd1: Path, tiny_sdxl: Path) -> None:
    """A model folder as model.vae gives its vae/ part, as load_vae reads it; the meter built the model's own VAE."""
    own = _vae_parameters(str(tiny_sd1), str(tiny_sd1))
    other = _vae_parameters(str(tiny_sd1), str(tiny_sdxl))
    with torch.device("meta"):
        assert other == sum(p.numel() for p in architecture_of(str(tiny_sdxl)).build().vae.parameters()) != own


def test_a_model_vae_not_on_this_machine_keeps_the_models_own_and_says_so(tmp_path: Path) -> None:
    profile = tiny_profile(tmp_path, model={"pretrained": "builtin:tiny-sd1", "vae": "/workspace/vaes/sdxl-vae"})
    assert any("model.vae '/workspace/vaes/sdxl-vae' is not on this machine" in note for note in estimate_peak(profile).notes)


def test_a_single_file_model_vae_is_refused_as_the_trainer_refuses_it(tmp_path: Path) -> None:
    file = tmp_path / "vae-ft-mse-840000.safetensors"
    file.write_bytes(b"x")
    with pytest.raises(ArchitectureUnavailableError, match="is a single file; model.vae takes a diffusers VAE folder"):
        vae_config_folder(str(file))


@pytest.mark.parametrize(("model", "vae"), [("builtin:tiny-flux", "builtin:tiny-sd1"), ("builtin:tiny-sd1", "builtin:tiny-flux")])
def test_a_vae_of_other_latents_than_the_denoiser_takes_is_refused(tmp_path: Path, model: str, vae: str) -> None:
    """A Flux model given an SD VAE (4 latent channels, not 16) failed the estimate as "a bug in dbtui" (a shape error)."""
    profile = tiny_profile(tmp_path, model={"pretrained": model, "vae": vae})
    with pytest.raises(ArchitectureUnavailableError, match="makes latents of .* channels, where .* takes .*: give a VAE"):
        estimate_peak(profile)


def test_the_run_refuses_a_vae_of_other_latents_as_it_loads_not_at_its_first_encode(tiny_flux: Path, tiny_sd1: Path) -> None:
    """The trainer loaded an SD VAE beside a Flux transformer, then failed at the first encode on a matrix shape."""
    from engine.models.loading import load_components
    from engine.models.parts import ModelNotFoundError

    with pytest.raises(ModelNotFoundError, match="makes latents of 4 channels, where Flux.* takes 16: give a VAE made for"):
        load_components(tiny_flux, vae=str(tiny_sd1 / "vae"))
    assert load_components(tiny_sd1, vae=str(tiny_sd1 / "vae")).vae.config.latent_channels == 4
