"""The diffusers-format LoRA we write loads, with the same result, on the oldest stack pyproject allows.

The oldest diffusers/transformers/peft that pyproject.toml declares (old_stack.py's venv) and this stack
both run ``lora_probe.py`` on one LoRA file, and the fused weights must match bit for bit.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from old_stack import oldest_declared, run_or_fail
from safetensors import safe_open
from safetensors.torch import load_file
from test_convert_lora import _lora_pipeline

from engine.convert import export_lora_diffusers
from engine.builtin.tiny_model import build_pipeline

PROBE = Path(__file__).with_name("lora_probe.py")

pytestmark = pytest.mark.slow


def _probe(python: Path | str, base: Path, lora: Path, out: Path) -> dict[str, torch.Tensor]:
    run_or_fail([str(python), str(PROBE), str(base), str(lora), str(out)], f"loading the LoRA with {python}", 300)
    return load_file(out)


def test_our_diffusers_lora_loads_identically_on_the_oldest_declared_stack(old_python: Path, tmp_path: Path) -> None:
    base = tmp_path / "base"
    build_pipeline(seed=0).save_pretrained(base)
    pipe = _lora_pipeline()
    lora = export_lora_diffusers(tmp_path / "lora", unet=pipe.unet, text_encoder=pipe.text_encoder)

    new = _probe(sys.executable, base, lora, tmp_path / "new.safetensors")
    old = _probe(old_python, base, lora, tmp_path / "old.safetensors")
    with safe_open(str(tmp_path / "old.safetensors"), framework="pt") as file:
        versions = file.metadata()
    for name, version in oldest_declared().items():
        assert versions[name].startswith(version + "."), (name, versions[name])

    assert set(old) == set(new)
    unequal = [key for key in new if key != "text_features" and not torch.equal(old[key], new[key])]
    assert not unequal, f"{len(unequal)} fused tensors differ between the stacks, e.g. {unequal[:3]}"
    assert torch.allclose(old["text_features"], new["text_features"], atol=1e-6)

    # The LoRA took part in both components: the fused attention weights, and only they, moved.
    base_weights = {f"unet.{k}": v for k, v in load_file(base / "unet" / "diffusion_pytorch_model.safetensors").items()}
    base_weights.update({f"text_encoder.{k.removeprefix('text_model.')}": v
                         for k, v in load_file(base / "text_encoder" / "model.safetensors").items()})
    moved = {key for key, value in base_weights.items() if not torch.equal(new[key], value)}
    assert any(k.startswith("unet.") and k.endswith("attn2.to_k.weight") for k in moved)
    assert any(k.startswith("text_encoder.") and k.endswith("self_attn.q_proj.weight") for k in moved)
    assert all(k.endswith(("to_q.weight", "to_k.weight", "to_v.weight", "to_out.0.weight", "proj.weight")) for k in moved)
