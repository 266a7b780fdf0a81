"""The CLI and the wizard reach the engine through the same entry points: a profile gives the
dataset doctor the same settings in both, and a model source is told apart in one place."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dbtui.cli import main
from dbtui.engine_facade import RealEngine, model_kind
from engine.dataset.prepare import MANIFEST
from engine.profile import save_profile, validate_data


def test_the_wizard_and_the_cli_prepare_a_profile_with_the_same_settings(tmp_path: Path, demo_data: Path) -> None:
    profile = validate_data({
        "name": "p",
        "model": {"pretrained": "builtin:tiny-sd1"},
        "concepts": [{"instance_dir": "builtin:demo-instance", "instance_prompt": "photo of zwx disc"}],
        "dataset": {"resolution": 32, "center_crop": False, "bucketing": True},
    })
    path = save_profile(profile, tmp_path / "p.toml")
    wizard = Path(RealEngine().prepare_dataset(profile, 0).destination)
    assert main(["dataset", "prepare", str(demo_data / "instance"), str(tmp_path / "cli"), "--profile", str(path)]) == 0

    def settings(folder: Path) -> list[dict]:
        return [stamp["settings"] for stamp in json.loads((folder / MANIFEST).read_text()).values()]

    made = settings(wizard)
    assert made and made == settings(tmp_path / "cli")
    assert {(s["resolution"], s["center_crop"], s["bucketing"]) for s in made} == {(32, False, True)}


@pytest.mark.parametrize(("source", "kind"), [
    ("builtin:tiny-sd1", "builtin"),
    ("models/mine.safetensors", "single-file"),
    ("~/old.CKPT", "single-file"),
    ("./not-made-yet", "diffusers"),
    ("stable-diffusion-v1-5/stable-diffusion-v1-5", "hub"),
])
def test_a_model_source_is_told_apart_from_its_text(source: str, kind: str) -> None:
    assert model_kind(source) == kind


def test_an_existing_folder_is_a_diffusers_folder_whatever_its_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sd15").mkdir()
    assert model_kind("sd15") == "diffusers"
    assert model_kind("sd16") == "hub"
