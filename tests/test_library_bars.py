"""dbtui export, convert and fit show dbtui's own phases, not diffusers' and transformers' tqdm bars ("Loading
weights", "Writing model shards", "Loading pipeline components") mixed into their lines."""

from __future__ import annotations

import subprocess
from pathlib import Path

from engine.profile import load_profile
from tests.runs_helpers import dbtui, profile_file, trained_as_by_dbtui_run

BARS = ("Loading weights", "Writing model shards", "Loading pipeline components", "it/s]")


def _said(*args: str) -> str:
    run = dbtui(*args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out, _ = run.communicate(timeout=600)
    assert run.returncode == 0, out
    return out


def test_export_convert_and_fit_show_no_library_bars_and_say_when_the_model_loads(tmp_path: Path) -> None:
    profile = profile_file(tmp_path, training={"max_train_steps": 2},
                           saving={"every_n_steps": 100, "export": ["diffusers", "safetensors"]})
    # The run to export is trained in this process; the commands whose output is read are processes of their own.
    run = trained_as_by_dbtui_run(load_profile(profile))
    exported = _said("export", str(run.path), "--step", "2")
    converted = _said("convert", "to-single-file", str(run.outputs / "diffusers"), str(tmp_path / "m.safetensors"))
    fitted = _said("fit", str(profile), "--steps", "2")
    for out in (exported, converted, fitted):
        assert not any(bar in out for bar in BARS), out
    assert "[load_model] started" in exported and "[load_model] done" in exported, exported
    assert "[load_model] started" in fitted, fitted
