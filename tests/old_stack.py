"""The oldest diffusers/transformers/peft that pyproject.toml declares, in a venv sharing this Python's torch.

The venv is kept in ~/.cache/dbtui-tests (outside the checkout, so a fresh clone on the same machine, as CI makes,
reuses it), keyed by the versions: the first use installs for one to three minutes. Tests get it from
conftest.py's ``old_python`` fixture.
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

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("diffusers", "transformers", "peft")


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


def run_or_fail(command: list[str], what: str, timeout: int) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    if done.returncode != 0:
        pytest.fail(f"{what} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


def old_stack_python() -> Path:
    """The python of a venv with the oldest declared diffusers/transformers/peft over this Python's torch."""
    pins = [f"{name}=={version}.*" for name, version in oldest_declared().items()]
    key = "-".join(p.replace("==", "").replace(".*", "") for p in pins) + f"-torch{torch.__version__}"
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    venv = cache / "dbtui-tests" / "old-stack" / key
    python = venv / "bin" / "python"
    if (venv / "ready").is_file():
        return python
    shutil.rmtree(venv, ignore_errors=True)
    run_or_fail([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], "creating the venv", 120)
    # Installing beside the system torch: pip keeps it, since every pin accepts torch 2.x.
    run_or_fail([str(python), "-m", "pip", "install", "-q", *pins], f"pip install {' '.join(pins)}", 400)
    (venv / "ready").write_text("\n".join(pins) + "\n", encoding="utf-8")
    return python
