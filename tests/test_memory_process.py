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
               r"the memory meter was ended by signal 9 \(SIGKILL\) \(out of memory\?\)", False),
    "traceback": (f"{AT_EXIT_WARNING}; raise RuntimeError('the UNet config has no sample_size')",
                  "^RuntimeError: the UNet config has no sample_size$", False),
    "its own word": (f"{AT_EXIT_WARNING}; import json; print(json.dumps({{'memory_meter_error': 'no model_index.json'}})); "
                     "raise SystemExit(1)", "^no model_index.json$", True),
    # A library's print left without its newline, the tagged line glued to it.
    "its own word after a print": ("import json; print('loading...', end=''); "
                                   "print(json.dumps({'memory_meter_error': 'no model_index.json'})); raise SystemExit(1)",
                                   "^no model_index.json$", True),
}


@pytest.mark.parametrize("child", CHILDREN)
def test_a_failed_child_gives_its_reason_never_a_librarys_warning(child: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from engine.memory import process

    code, reason, recurs = CHILDREN[child]
    monkeypatch.setattr(process, "COMMAND", (sys.executable, "-c", code))
    with pytest.raises(process.MeterProcessError, match=reason) as raised:
        process.estimate_in_child(tiny_profile(tmp_path))
    assert raised.value.recurs is recurs  # its own word comes again for the same settings; a kill may not


def test_an_estimate_is_read_after_a_librarys_unfinished_line_and_kept_when_an_exit_handler_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from engine.memory import process
    from engine.memory.estimate import MemoryEstimate

    estimate = MemoryEstimate(weights=1, gradients=0, optimizer_state=0, activations=0, caches=0, autocast_weight_copies=0,
                              peak_phase="backward", model="m", batch=1, height=8, width=8, seconds=0.0)
    code = (f"import json; print('loading...', end=''); print(json.dumps({{'memory_estimate': {estimate.to_dict()!r}}})); "
            "raise SystemExit(3)")
    monkeypatch.setattr(process, "COMMAND", (sys.executable, "-c", code))
    assert process.estimate_in_child(tiny_profile(tmp_path)) == estimate


def test_the_meters_child_starts_its_answer_on_a_line_of_its_own(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import json
    from io import StringIO

    from engine.memory.__main__ import main
    from engine.memory.process import _read

    print("loading...", end="")  # a library's print, left without its newline
    assert main([str(tmp_path / "missing.toml")]) == 1
    out = capsys.readouterr().out
    assert "memory_meter_error" in json.loads(out.splitlines()[1])
    assert _read(StringIO(out)) == _read(StringIO(out.replace("\n", "", 1)))
