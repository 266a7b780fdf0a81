"""The probes of the oldest declared stack (old_stack.py) and of this one, run once per pytest run in one process per
stack: older_readers_probe.py over the diffusers folders of test_older_readers.py, and lora_probe.py over the LoRA of
test_lora_old_stack.py. A probe process's imports of diffusers, transformers and peft took most of its time (some 6 s
of CPU each); the two files started two each."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.shared_runs import built_once

PROBE = Path(__file__).with_name("older_readers_probe.py")
FOLDERS = ("tiny_sd1", "tiny_sdxl", "tiny_flux")


def _save_run_output(base: Path, folder: Path) -> Path:
    from engine.models.loading import load_components
    from engine.training.outputs import save_pipeline

    components = load_components(base)
    save_pipeline(folder, components, components.unet, list(components.text_encoders), vae=components.vae, unet_half=False)
    return folder


def _probe_both_stacks(root: Path, old_python: Path, models: dict[str, Path]) -> dict[str, Any]:
    from old_stack import run_or_fail
    from test_convert_lora import _lora_pipeline

    from engine.builtin.tiny_model import build_pipeline
    from engine.convert import export_lora_diffusers

    folders = {"tiny_sd1": _save_run_output(models["tiny_sd1"], root / "tiny_sd1" / "out"),
               "tiny_sdxl": _save_run_output(models["tiny_sdxl"], root / "tiny_sdxl" / "out"), "tiny_flux": models["tiny_flux"]}
    (root / "tiny_flux").mkdir()
    base = root / "lora" / "base"
    build_pipeline(seed=0).save_pretrained(base)
    pipe = _lora_pipeline()
    lora = export_lora_diffusers(root / "lora" / "lora", unet=pipe.unet, text_encoder=pipe.text_encoder)
    for stack, python in (("new", sys.executable), ("old", old_python)):
        pairs = [str(part) for name, folder in folders.items() for part in (folder, root / name / f"{stack}.safetensors")]
        lora_probe = ["--lora", str(base), str(lora), str(root / "lora" / f"{stack}.safetensors")]
        run_or_fail([str(python), str(PROBE), *pairs, *lora_probe], f"the probes with {python}", 600)
    return {}


@pytest.fixture(scope="session")
def stacks_probed(old_python: Path, tiny_sd1: Path, tiny_sdxl: Path, tiny_flux: Path,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A folder holding, for a run's output of tiny SD1 and tiny SDXL and for the built-in Flux, the folder probe's
    dumps on each stack (NAME/new.safetensors, NAME/old.safetensors) and the folder it loaded (NAME/out); and the LoRA
    probe's (lora/new.safetensors, lora/old.safetensors) of lora/lora on lora/base. A probe that failed left
    OUT.error, its traceback, in place of OUT."""
    models = {"tiny_sd1": tiny_sd1, "tiny_sdxl": tiny_sdxl, "tiny_flux": tiny_flux}
    root, _ = built_once(tmp_path_factory, "stacks-probed", lambda folder: _probe_both_stacks(folder, old_python, models))
    yield root
