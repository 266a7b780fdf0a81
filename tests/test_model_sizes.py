"""The size a model was made for, as the model step shows it and a new profile takes it: read from its configs
(a Flux folder's VAE, as its transformer says none), and for a full-size built-in without building it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from dbtui.engine_facade import RealEngine
from dbtui.session import Session
from engine.model_info import describe_model


def test_a_tiny_flux_is_made_for_64_px_and_a_new_profile_trains_at_that_size(tiny_flux: Path) -> None:
    described = describe_model("builtin:tiny-flux")
    assert (described.family_id, described.resolution) == ("flux", 64)
    session = Session()
    session.set("dataset.resolution", 1024)  # taken from an SDXL checked before
    session.adopted_resolution = 1024
    session.set("model.pretrained", "builtin:tiny-flux")
    session.adopt_model(RealEngine().inspect_model("builtin:tiny-flux"))
    assert session.get("dataset.resolution") == 64


def test_a_flux_folder_whose_vae_says_no_size_is_made_for_fluxs_own(tiny_flux: Path, tmp_path: Path) -> None:
    folder = tmp_path / "flux"
    shutil.copytree(tiny_flux, folder, ignore=shutil.ignore_patterns("*.safetensors"))
    config = folder / "vae" / "config.json"
    config.write_text(json.dumps({k: v for k, v in json.loads(config.read_text()).items() if k != "sample_size"}))
    assert describe_model(str(folder)).resolution == 1024


def test_the_unet_families_keep_their_size_from_the_unet(tiny_sdxl: Path) -> None:
    assert describe_model("builtin:tiny-sdxl").resolution == 64
