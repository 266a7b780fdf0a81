"""The diffusers-format LoRA we write loads, with the same result, on the oldest stack pyproject allows.

The oldest diffusers/transformers/peft that pyproject.toml declares (old_stack.py's venv) and this stack
both run ``lora_probe.py`` on one LoRA file, and the fused weights must match bit for bit.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from old_stack import oldest_declared
from safetensors import safe_open
from safetensors.torch import load_file

pytestmark = pytest.mark.slow


def _probed(stacks_probed: Path, stack: str) -> dict[str, torch.Tensor]:
    error = stacks_probed / "lora" / f"{stack}.safetensors.error"
    if error.exists():
        pytest.fail(f"loading the LoRA on the {stack} stack failed:\n{error.read_text(encoding='utf-8')}")
    return load_file(stacks_probed / "lora" / f"{stack}.safetensors")


def test_our_diffusers_lora_loads_identically_on_the_oldest_declared_stack(stacks_probed: Path) -> None:
    # tests/stack_probes.py built lora/base and lora/lora (our export) and ran lora_probe.py on both stacks.
    base = stacks_probed / "lora" / "base"
    new, old = _probed(stacks_probed, "new"), _probed(stacks_probed, "old")
    with safe_open(str(stacks_probed / "lora" / "old.safetensors"), framework="pt") as file:
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
