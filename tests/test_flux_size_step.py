"""Flux's size check takes the model's own pixel step (VAE factor × the 2×2 patches), the step that
``dbtui dataset prepare --bucketing`` makes its buckets by: the tiny Flux's 4, a real Flux.1's 16."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from engine.dataset import prepare_dataset
from engine.errors import DbtuiError
from engine.model_info import size_multiple
from engine.models.flux import Flux
from engine.profile_checks import check_profile
from tests.training_helpers import tiny_profile

FLUX_MODEL = {"pretrained": "builtin:tiny-flux"}


def test_the_buckets_prepare_makes_for_the_tiny_flux_pass_validate(tmp_path: Path, tiny_flux: Path) -> None:
    originals = tmp_path / "originals"
    originals.mkdir()
    Image.new("RGB", (90, 70), "red").save(originals / "wide.png")
    step = size_multiple("builtin:tiny-flux")
    prepare_dataset(originals, tmp_path / "prepared", resolution=64, bucketing=True, size_multiple=step)
    bucket = list(Image.open(tmp_path / "prepared" / "wide.png").size)
    assert bucket == [72, 56]  # not multiples of 16: the tiny Flux's VAE halves, so its step is 4
    profile = tiny_profile(tmp_path, model=FLUX_MODEL, training={"method": "lora"},
                           dataset={"resolution": 64, "bucketing": True, "buckets": [[64, 64], bucket]})
    assert check_profile(profile).errors == []
    Flux().check_profile(profile, step)  # the trainer's own check, with the loaded model's step


def test_a_real_size_flux_still_refuses_sizes_off_its_step_of_16(tmp_path: Path) -> None:
    profile = tiny_profile(tmp_path, model=FLUX_MODEL, training={"method": "lora"},
                           dataset={"resolution": 64, "bucketing": True, "buckets": [[64, 64], [72, 56]]})
    with pytest.raises(DbtuiError, match=r"72x56 is not a multiple of 16 on every side.*e\.g\. 64/80x48/64"):
        Flux().check_profile(profile, 16)
    with pytest.raises(DbtuiError, match="multiple of 16"):
        Flux().check_profile(profile)  # no model loaded: a real Flux.1's usual step
    assert size_multiple("black-forest-labs/FLUX.1-dev") == 16
