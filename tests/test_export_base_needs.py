"""A moved base model's refusal says what the export reads from it: a LoRA-only export was told it takes "the VAE,
frozen text encoders" from it, which no LoRA holds or needs; it builds the LoRA on the base model's denoiser."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine.profile.io import load_profile
from engine.runs.export import BaseModelGoneError, _check_base_model
from engine.runs.folder import RunFolder
from tests.runs_helpers import profile_file


def _refusal(tmp_path: Path, family: str | None, *overrides: str) -> str:
    profile = load_profile(profile_file(tmp_path), [f"model.pretrained={tmp_path / 'base-moved'}", *overrides])
    folder = RunFolder(tmp_path / "run")
    with pytest.raises(BaseModelGoneError) as refused:
        _check_base_model(profile, folder, family)
    said = str(refused.value)
    assert "does not exist on this machine" in said
    assert re.search(rf'write its new place in {re.escape(str(folder.profile))} \(model.pretrained = "NEW_PLACE"\)', said)
    return said


LORA = ("training.method=lora", "saving.export=['lora_diffusers', 'lora_kohya']")


def test_a_lora_only_export_needs_the_denoiser_and_no_vae(tmp_path: Path) -> None:
    said = _refusal(tmp_path, "sd", *LORA, "training.train_text_encoder=false")
    assert "writes only the trained LoRA (no VAE, no frozen text encoder), built on the base model's UNet, the" in said


def test_a_flux_lora_with_its_text_encoder_needs_clip_l_not_t5(tmp_path: Path) -> None:
    said = _refusal(tmp_path, "flux", *LORA, "training.train_text_encoder=true")
    assert "built on the base model's transformer and CLIP-L text encoder, the layers" in said
    assert "T5" not in said


def test_a_whole_model_export_needs_every_part_that_did_not_train(tmp_path: Path) -> None:
    said = _refusal(tmp_path, "flux", "training.method=full", "saving.export=['diffusers']",
                    "training.train_text_encoder=true")
    assert "takes from the base model its VAE, T5-XXL text encoder, tokenizers and scheduler" in said
    assert "CLIP-L" not in said  # it trained: the checkpoint holds it
    said = _refusal(tmp_path, "sdxl", "training.method=lora", "saving.export=['lora_diffusers', 'safetensors']")
    assert "its UNet, VAE, CLIP-L text encoder, OpenCLIP-bigG text encoder, tokenizers and scheduler" in said


def test_a_whole_model_of_a_lora_needs_the_text_encoders_its_lora_merges_into(tmp_path: Path) -> None:
    """A LoRA that trained the text encoders is merged into the base model's own (outputs.full_precision_models): the
    refusal left them out, as if the checkpoint held them."""
    said = _refusal(tmp_path, "sdxl", "training.method=lora", "saving.export=['diffusers']",
                    "training.train_text_encoder=true")
    assert "its UNet, VAE, CLIP-L text encoder, OpenCLIP-bigG text encoder, tokenizers and scheduler" in said
    said = _refusal(tmp_path, "sd", "training.method=lora", "saving.export=['safetensors']",
                    "training.train_text_encoder=true")
    assert "its UNet, VAE, text encoder, tokenizers and scheduler" in said


def test_the_text_encoders_said_are_those_the_family_trains(tmp_path: Path, monkeypatch) -> None:
    """Which text encoders train is the family's (Family.trained_text_encoders): a copy of it here would go on naming
    both SDXL CLIPs as trained should the family train only one."""
    from engine.models.registry import family_named

    monkeypatch.setattr(type(family_named("sdxl")), "trained_text_encoders", (0,))
    said = _refusal(tmp_path, "sdxl", *LORA, "training.train_text_encoder=true")
    assert "built on the base model's UNet and CLIP-L text encoder, the layers" in said
    said = _refusal(tmp_path, "sdxl", "training.method=full", "saving.export=['diffusers']",
                    "training.train_text_encoder=true")
    assert "its VAE, OpenCLIP-bigG text encoder, tokenizers and scheduler" in said
