"""The diffusers-format LoRA we write loads, with the same result, on the oldest stack pyproject allows.

The oldest diffusers/transformers/peft that pyproject.toml declares are installed into a venv that
shares this Python's torch. Both stacks run ``lora_probe.py`` on one LoRA file, and the fused
weights must match bit for bit. The venv is kept in ~/.cache/dbtui-tests (outside the checkout, so a
fresh clone on the same machine, as CI makes, reuses it), keyed by the versions: a re-run takes
seconds; the first run installs for one to three minutes.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file
from test_convert_lora import _lora_pipeline

from engine.convert import export_lora_diffusers
from engine.builtin.tiny_model import build_pipeline

ROOT = Path(__file__).resolve().parents[1]
PROBE = Path(__file__).with_name("lora_probe.py")
PACKAGES = ("diffusers", "transformers", "peft")

pytestmark = pytest.mark.slow


def oldest_declared() -> dict[str, str]:
    """{package: "X.Y"}: each package's lower bound in pyproject.toml."""
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    found = {}
    for spec in dependencies:
        match = re.fullmatch(r"([\w-]+)\s*>=\s*([\d.]+)(,.*)?", spec)
        if match and match.group(1) in PACKAGES:
            found[match.group(1)] = match.group(2)
    assert set(found) == set(PACKAGES), f"pyproject.toml lacks a lower bound for one of {PACKAGES}"
    return found


def _run(command: list[str], what: str, timeout: int) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    if done.returncode != 0:
        pytest.fail(f"{what} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


@pytest.fixture(scope="session")
def old_python() -> Path:
    """A venv with the oldest declared diffusers/transformers/peft over this Python's torch."""
    pins = [f"{name}=={version}.*" for name, version in oldest_declared().items()]
    key = "-".join(p.replace("==", "").replace(".*", "") for p in pins) + f"-torch{torch.__version__}"
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    venv = cache / "dbtui-tests" / "old-stack" / key
    python = venv / "bin" / "python"
    if (venv / "ready").is_file():
        return python
    shutil.rmtree(venv, ignore_errors=True)
    _run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], "creating the venv", 120)
    # Installing beside the system torch: pip keeps it, since every pin accepts torch 2.x.
    _run([str(python), "-m", "pip", "install", "-q", *pins], f"pip install {' '.join(pins)}", 400)
    (venv / "ready").write_text("\n".join(pins) + "\n", encoding="utf-8")
    return python


def _probe(python: Path | str, base: Path, lora: Path, out: Path) -> dict[str, torch.Tensor]:
    _run([str(python), str(PROBE), str(base), str(lora), str(out)], f"loading the LoRA with {python}", 300)
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
