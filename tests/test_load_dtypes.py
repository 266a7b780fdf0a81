"""Frozen parts load straight in the weight dtype, trained ones in their own: no fp32 copy on the host first."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from engine.models.family import LoadDtypes
from engine.models.loading import load_components
from engine.training.trainable import load_dtypes
from tests.training_helpers import tiny_profile

BF16, FP16 = torch.bfloat16, torch.float16


@pytest.mark.parametrize(("training", "dtype", "trained", "expected"), [
    ({"method": "lora"}, BF16, torch.float32, LoadDtypes(BF16, BF16)),
    ({"method": "lora", "train_text_encoder": True}, FP16, torch.float32, LoadDtypes(FP16, FP16)),  # LoRA on a frozen encoder
    ({"method": "full"}, BF16, torch.float32, LoadDtypes(None, BF16)),  # the trained UNet in fp32, as always
    ({"method": "full", "train_text_encoder": True}, BF16, torch.float32, LoadDtypes(None, None)),
    ({"method": "full", "train_text_encoder": True}, BF16, BF16, LoadDtypes(BF16, BF16)),  # precision.bf16_weights
    ({"method": "lora"}, torch.float32, torch.float32, LoadDtypes(None, None)),  # a CPU run: fp32 throughout
])
def test_each_part_loads_in_the_dtype_it_trains_or_rests_in(tmp_path: Path, training: dict, dtype: torch.dtype,
                                                             trained: torch.dtype, expected: LoadDtypes) -> None:
    assert load_dtypes(tiny_profile(tmp_path, training=training), dtype, trained) == expected


def test_a_flux_model_loads_its_transformer_and_encoders_in_the_dtypes_asked(tiny_flux: Path) -> None:
    def dtypes_of(components) -> set[torch.dtype]:
        models = [components.unet, *components.text_encoders]
        return {p.dtype for model in models for p in model.parameters()}

    assert dtypes_of(load_components(tiny_flux)) == {torch.float32}
    assert dtypes_of(load_components(tiny_flux, dtypes=LoadDtypes(BF16, BF16))) == {BF16}
    narrow = load_components(tiny_flux, dtypes=LoadDtypes(denoiser=BF16))
    assert {p.dtype for p in narrow.unet.parameters()} == {BF16}
    assert {p.dtype for te in narrow.text_encoders for p in te.parameters()} == {torch.float32}
