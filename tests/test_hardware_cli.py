"""`dbtui hardware` in a pipe and in a narrow terminal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.runs_helpers import ROOT, env


@pytest.mark.parametrize("json", [False, True], ids=["table", "json"])
def test_a_closed_output_pipe_ends_dbtui_hardware_with_status_0(json: bool, tmp_path: Path) -> None:
    """`dbtui hardware | head -1` exited 1 (Rich's own broken-pipe handler), and failed a `set -o pipefail` script."""
    read, write = os.pipe()
    os.close(read)  # every write fails, as after `head -1` exits
    command = [sys.executable, "-m", "dbtui", "hardware", "--output-dir", str(tmp_path), *(["--json"] if json else [])]
    try:
        result = subprocess.run(command, cwd=ROOT, env=env(), stdout=write, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "Broken pipe" not in result.stderr

