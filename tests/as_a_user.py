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


def python_as_a_user(code: str, *, cwd: Path) -> str:
    """What the Python ``code`` prints, run in ``cwd`` as ``dbtui_as_a_user`` runs dbtui: for an engine function's own
    words on a file this user may not read, without a whole command."""
    done = subprocess.run([*AS_A_USER, sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True)
    return done.stdout
