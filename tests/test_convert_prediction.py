"""What a converted model predicts (epsilon or v): detected from the file, never taken from a --config folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from convert_helpers import random_sd1, random_sd2v  # noqa: F401

from engine.convert import export_single_file, import_single_file


def _prediction(folder: Path) -> str:
    return json.loads((folder / "scheduler" / "scheduler_config.json").read_text())["prediction_type"]


def _predicting(model: Path, folder: Path, prediction_type: str) -> Path:
    """A copy of ``model`` whose scheduler predicts ``prediction_type``."""
    shutil.copytree(model, folder)
    config = folder / "scheduler" / "scheduler_config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "prediction_type": prediction_type}))
    return folder


def test_a_config_folder_does_not_decide_what_the_file_predicts(random_sd2v: Path, tmp_path: Path) -> None:
    """An SD2.x-v file converted with an epsilon --config was said to be v and written as epsilon (and the reverse)."""
    v_file = export_single_file(random_sd2v, tmp_path / "v.safetensors")  # with its v .yaml
    epsilon_config = _predicting(random_sd2v, tmp_path / "epsilon-config", "epsilon")
    assert _prediction(import_single_file(v_file, tmp_path / "v", config=epsilon_config)) == "v_prediction"

    epsilon_file = export_single_file(epsilon_config, tmp_path / "e.safetensors")
    assert not (tmp_path / "e.yaml").exists()
    assert _prediction(import_single_file(epsilon_file, tmp_path / "e", config=random_sd2v)) == "epsilon"


def test_a_v_prediction_sd1_export_reads_back_as_v(random_sd1: Path, tmp_path: Path) -> None:
    """dbtui's own v-prediction SD1.x export (its metadata says so) came back as an epsilon model."""
    events = []
    for name in ("m.safetensors", "m.ckpt"):
        epsilon_config = _predicting(random_sd1, tmp_path / f"e-{name}", "epsilon")  # tiny: a config is needed
        exported = export_single_file(_predicting(random_sd1, tmp_path / f"v-{name}", "v_prediction"), tmp_path / name,
                                      fmt=name.split(".")[1], emit=events.append)
        folder = import_single_file(exported, tmp_path / f"back-{name}", config=epsilon_config, emit=events.append)
        assert _prediction(folder) == "v_prediction", name
    assert any("1.x, v-prediction" in getattr(event, "description", "") for event in events)
