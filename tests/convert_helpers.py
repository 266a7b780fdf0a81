"""Shared pieces of the conversion tests: tiny models with every tensor random, and comparisons."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from engine.builtin.tiny_model import build_pipeline

COMPONENTS = ("unet", "vae", "text_encoder")


def save_random_model(folder: Path, variant: str, seed: int = 0) -> Path:
    """A tiny pipeline whose every tensor (norms and biases too) is random, so a swap or a
    dropped tensor cannot hide behind default values."""
    pipe = build_pipeline(variant=variant, seed=seed)
    generator = torch.Generator().manual_seed(seed + 100)
    with torch.no_grad():
        for name in COMPONENTS:
            for param in getattr(pipe, name).parameters():
                param.copy_(torch.randn(param.shape, generator=generator) * 0.3)
    pipe.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def random_sd1(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_random_model(tmp_path_factory.mktemp("random-sd1") / "model", "sd1", seed=1)


@pytest.fixture(scope="session")
def random_sd2v(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_random_model(tmp_path_factory.mktemp("random-sd2v") / "model", "sd2v", seed=2)


def load_components(folder: Path) -> dict[str, dict[str, torch.Tensor]]:
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel

    return {
        "unet": UNet2DConditionModel.from_pretrained(folder, subfolder="unet").state_dict(),
        "vae": AutoencoderKL.from_pretrained(folder, subfolder="vae").state_dict(),
        "text_encoder": CLIPTextModel.from_pretrained(folder, subfolder="text_encoder").state_dict(),
    }


def assert_same_weights(expected: dict, got: dict, *, half: bool = False) -> None:
    """Every tensor of every component present and bit-identical (to the fp16-rounded source if half)."""
    for name in COMPONENTS:
        assert set(got[name]) == set(expected[name]), name
        for key, value in expected[name].items():
            want = value.half().float() if half else value
            assert torch.equal(got[name][key].float(), want), f"{name}.{key}"
