"""SDXL LoRA export: diffusers format with both text encoders, and kohya format (lora_unet_/lora_te1_/lora_te2_)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from engine.builtin.tiny_sdxl import build_sdxl_pipeline
from engine.convert import ConvertError, export_lora_diffusers, export_lora_kohya

RANK, UNET_ALPHA, TEXT_ALPHA, TEXT_2_ALPHA = 4, 8, 2, 6  # alphas unlike the rank, so a lost alpha shows
ATTENTION = ["to_q", "to_k", "to_v", "to_out.0"]
CLIP_ATTENTION = ["q_proj", "k_proj", "v_proj", "out_proj"]


def _lora_pipeline(*, text_encoders: bool, unet_targets: list[str] = ATTENTION):
    """The tiny SDXL with rank-4 LoRAs whose B weights are random (peft starts them at zero)."""
    from peft import LoraConfig, inject_adapter_in_model

    pipe = build_sdxl_pipeline(seed=0)
    pipe.unet.add_adapter(LoraConfig(r=RANK, lora_alpha=UNET_ALPHA, target_modules=unet_targets))
    models = [pipe.unet]
    if text_encoders:
        for encoder, alpha in ((pipe.text_encoder, TEXT_ALPHA), (pipe.text_encoder_2, TEXT_2_ALPHA)):
            # As engine/training/trainable.py does: transformers' add_adapter wants a newer peft.
            config = LoraConfig(r=RANK, lora_alpha=alpha, target_modules=CLIP_ATTENTION)
            inject_adapter_in_model(config, encoder, adapter_name="default")
            encoder.peft_config = {"default": config}
            models.append(encoder)
    generator = torch.Generator().manual_seed(3)
    # Large enough to change the image, small enough that the UNet stays well-conditioned: at 0.3 its attention
    # turned a 1e-6 change in the text embeddings into 0.05 in its output, so a reload matched only bit for bit.
    with torch.no_grad():
        for model in models:
            for name, param in model.named_parameters():
                if "lora_" in name:
                    param.copy_(torch.randn(param.shape, generator=generator) * 0.15)
    return pipe


def _image(pipe) -> np.ndarray:
    generator = torch.Generator().manual_seed(0)
    return pipe(
        "a photo", num_inference_steps=2, height=64, width=64, generator=generator, output_type="np"
    ).images


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """The tiny SDXL saved as a folder, and its image without any LoRA."""
    folder = tmp_path_factory.mktemp("sdxl") / "base"
    pipe = build_sdxl_pipeline(seed=0)
    pipe.save_pretrained(folder)
    return folder, _image(pipe)


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """A UNet + both text encoders LoRA in diffusers format, and the in-memory model's image."""
    pipe = _lora_pipeline(text_encoders=True)
    folder = export_lora_diffusers(
        tmp_path_factory.mktemp("lora") / "lora", unet=pipe.unet, text_encoder=pipe.text_encoder,
        text_encoder_2=pipe.text_encoder_2, sdxl=True,
    )
    return folder, _image(pipe)


def _with_lora(base_dir: Path, lora: Path) -> np.ndarray:
    from diffusers import StableDiffusionXLPipeline

    fresh = StableDiffusionXLPipeline.from_pretrained(base_dir)
    fresh.load_lora_weights(str(lora))
    return _image(fresh)


def test_diffusers_lora_reproduces_the_in_memory_model(base, full) -> None:
    base_dir, base_image = base
    folder, want = full
    assert np.abs(base_image - want).max() > 0.05  # the LoRA changes the image
    assert np.abs(_with_lora(base_dir, folder) - want).max() < 1e-4


def test_diffusers_lora_carries_each_components_config_and_text_model_keys(full) -> None:
    folder, _ = full
    file = folder / "pytorch_lora_weights.safetensors"
    with safe_open(str(file), framework="pt") as handle:
        packed = json.loads(handle.metadata()["lora_adapter_metadata"])
    # Each scale is folded into the weights (the alphas differ from the rank), so alpha = rank for every component.
    assert (packed["unet.lora_alpha"], packed["text_encoder.lora_alpha"], packed["text_encoder_2.lora_alpha"]) == (RANK,) * 3
    assert "text_encoder_2.peft_version" not in packed and "text_encoder_2.rank_pattern" in packed
    keys = load_file(file)
    for encoder in ("text_encoder.", "text_encoder_2."):
        ours = [k for k in keys if k.startswith(encoder)]
        assert ours and all(k.startswith(encoder + "text_model.encoder.layers.") for k in ours)


def test_kohya_lora_reproduces_the_in_memory_model(base, full, tmp_path: Path) -> None:
    base_dir, _ = base
    folder, want = full
    out = export_lora_kohya(folder, tmp_path / "zwx.safetensors")

    weights = load_file(out)
    assert {"_".join(k.split("_")[:2]) for k in weights} == {"lora_unet", "lora_te1", "lora_te2"}
    # The UNet in kohya sd-scripts' SDXL layout: down_blocks.1.attentions.0 is input block 4.
    assert "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q.lora_down.weight" in weights
    assert "lora_unet_output_blocks_2_1_transformer_blocks_1_attn2_to_out_0.lora_up.weight" in weights
    assert not any("down_blocks" in k or "up_blocks" in k for k in weights)
    assert {float(v) for k, v in weights.items() if k.endswith(".alpha")} == {RANK}  # the scales are in the weights
    with safe_open(str(out), framework="pt") as file:
        assert file.metadata()["ss_base_model_version"] == "sdxl_base_v1-0"  # what AUTOMATIC1111 files it as SDXL by

    assert np.abs(_with_lora(base_dir, out) - want).max() < 1e-4


def test_unet_only_lora_is_told_sdxl_and_reproduces_the_in_memory_model(base, tmp_path: Path) -> None:
    base_dir, base_image = base
    # Resnet layers (conv1, time_emb_proj) and proj_in too, so their original-layout names are checked.
    pipe = _lora_pipeline(text_encoders=False, unet_targets=[*ATTENTION, "conv1", "time_emb_proj", "proj_in"])
    want = _image(pipe)
    assert np.abs(base_image - want).max() > 0.05
    folder = export_lora_diffusers(tmp_path / "lora", unet=pipe.unet, sdxl=True)
    assert np.abs(_with_lora(base_dir, folder) - want).max() < 1e-4

    out = export_lora_kohya(folder, tmp_path / "unet.safetensors")  # no text_encoder_2 keys: told by the UNet
    weights = load_file(out)
    assert weights and all(k.startswith("lora_unet_") for k in weights)
    assert "lora_unet_input_blocks_1_0_in_layers_2.lora_down.weight" in weights  # down_blocks.0.resnets.0.conv1
    assert "lora_unet_output_blocks_0_0_emb_layers_1.alpha" in weights  # up_blocks.0.resnets.0.time_emb_proj
    assert np.abs(_with_lora(base_dir, out) - want).max() < 1e-4


def test_lora_without_family_signs_gets_names_that_sdxl_loads_too(base, tmp_path: Path) -> None:
    base_dir, base_image = base
    pipe = _lora_pipeline(text_encoders=False, unet_targets=["conv1"])  # resnets alone: no sign of either family
    want = _image(pipe)
    assert np.abs(base_image - want).max() > 0.05
    folder = export_lora_diffusers(tmp_path / "lora", unet=pipe.unet, sdxl=True)

    guessed = load_file(export_lora_kohya(folder, tmp_path / "guessed.safetensors"))
    assert "lora_unet_up_blocks_1_resnets_0_conv1.lora_up.weight" in guessed  # SD1/SD2's diffusers-style names
    told = export_lora_kohya(folder, tmp_path / "told.safetensors", sdxl=True)
    assert "lora_unet_output_blocks_3_0_in_layers_2.lora_up.weight" in load_file(told)  # up_blocks.1.resnets.0
    for out in (tmp_path / "guessed.safetensors", told):
        assert np.abs(_with_lora(base_dir, out) - want).max() < 1e-4


def test_second_text_encoder_needs_sdxl(full, tmp_path: Path) -> None:
    folder, _ = full
    with pytest.raises(ConvertError, match="only SDXL has.*sdxl=True"):
        export_lora_kohya(folder, tmp_path / "sd1.safetensors", sdxl=False)
    with pytest.raises(ValueError, match="sdxl=True"):  # refused before any model is read
        export_lora_diffusers(tmp_path / "x", unet=None, text_encoder_2=torch.nn.Linear(1, 1))
    assert not (tmp_path / "x").exists()
