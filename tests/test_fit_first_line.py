"""`dbtui fit --estimate-only`: its first line, "memory estimate (no GPU needed) …", came after seconds of silence,
the memory meter's import of torch, which it now comes before."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.runs_helpers import ROOT, env

SAID = "memory estimate (no GPU needed) …"


def test_the_estimate_is_said_before_torch_is_imported_and_stdout_keeps_the_json_alone(tmp_path: Path) -> None:
    # A model that is not here: its estimate is refused as soon as it starts, after the meter's imports.
    profile = tmp_path / "p.toml"
    profile.write_text('[model]\npretrained = "/nowhere/model.safetensors"\n[[concepts]]\ninstance_dir = "photos"\n'
                       'instance_prompt = "photo of zwx dog"\n', encoding="utf-8")
    # -X importtime writes each import on stderr as it ends, in order with the command's own lines there.
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "dbtui", "fit", str(profile), "--json"],
                            cwd=ROOT, env=env(), capture_output=True, text=True, timeout=300)
    lines = result.stderr.splitlines()
    torch_imported = next(index for index, line in enumerate(lines)
                          if line.startswith("import time:") and line.split("|")[-1].strip() == "torch")
    assert SAID in lines[:torch_imported], result.stderr[-2000:]
    assert SAID not in result.stdout, result.stdout
