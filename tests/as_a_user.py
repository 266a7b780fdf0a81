"""Run dbtui in a subprocess as a user without root's power to read through any permission."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Root reads through any permission: the command runs without the two capabilities that let it, as a user would.
AS_A_USER = ([] if os.geteuid() != 0 else
             ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-dac_override,-dac_read_search", "--"])


def dbtui_as_a_user(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``dbtui ARGS`` run in ``cwd``, its output captured, with a wide terminal so no message is wrapped."""
    return subprocess.run([*AS_A_USER, sys.executable, "-m", "dbtui", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "250"})
