"""The memory meter's answer as the wizard gets it: the same for every export, and its failures in its own words."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.memory.inputs import meter_key
from tests.training_helpers import tiny_profile

# A LoRA on CLIP's token embedding, which the kohya format has no place for (engine/training/trainable.py).
EMBEDDING_LORA = {"training": {"method": "lora", "train_text_encoder": True,
                               "lora": {"text_encoder_targets": ["q_proj", "token_embedding"]}}}


def test_the_exports_never_decide_the_meters_answer(tmp_path: Path, tiny_sd1: Path) -> None:
    """lora_kohya with an embedding target failed the meter's setup, lora_diffusers did not: one key, two answers."""
    from engine.memory import estimate_peak

    kohya = tiny_profile(tmp_path, **EMBEDDING_LORA, saving={"export": ["lora_kohya"], "output_dir": str(tmp_path)})
    diffusers = tiny_profile(tmp_path, **EMBEDDING_LORA, saving={"export": ["lora_diffusers"], "output_dir": str(tmp_path)})
    assert meter_key(kohya) == meter_key(diffusers)
    assert estimate_peak(kohya).peak_allocated == estimate_peak(diffusers).peak_allocated


def test_a_flux_profile_is_estimated_whatever_files_it_exports(tmp_path: Path) -> None:
    """Flux refuses single-file exports for the run; the meter (`dbtui fit --estimate-only`, the wizard's child)
    measured them as the run and failed."""
    from engine.memory import estimate_peak

    profile = tiny_profile(tmp_path, model={"pretrained": "builtin:tiny-flux"}, training={"method": "lora"},
                           saving={"export": ["diffusers", "safetensors"], "output_dir": str(tmp_path)})
    assert estimate_peak(profile).peak_allocated > 0


# Stand-ins for the meter's child: a library's warning on stderr, then the end. bitsandbytes writes the first without
# CUDA, diffusers the second when it loads a model; either was taken for the meter's reason.
BNB_WARNING = "UserWarning: Failed to load CPU gemm_4bit_forward from kernels-community"
AT_EXIT_WARNING = "import atexit, sys; atexit.register(lambda: print('modules [] are kept in float32', file=sys.stderr))"
CHILDREN = {
    "killed": (f"import os, signal, sys; print({BNB_WARNING!r}, file=sys.stderr, flush=True); os.kill(os.getpid(), signal.SIGKILL)",
               r"the memory meter was ended by signal 9 \(SIGKILL\) \(out of memory\?\)"),
    "traceback": (f"{AT_EXIT_WARNING}; raise RuntimeError('the UNet config has no sample_size')",
                  "^RuntimeError: the UNet config has no sample_size$"),
    "its own word": (f"{AT_EXIT_WARNING}; import json; print(json.dumps({{'memory_meter_error': 'no model_index.json'}})); "
                     "raise SystemExit(1)", "^no model_index.json$"),
}


@pytest.mark.parametrize("child", CHILDREN)
def test_a_failed_child_gives_its_reason_never_a_librarys_warning(child: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from engine.memory import process

    code, reason = CHILDREN[child]
    monkeypatch.setattr(process, "COMMAND", (sys.executable, "-c", code))
    with pytest.raises(process.MeterProcessError, match=reason):
        process.estimate_in_child(tiny_profile(tmp_path))
