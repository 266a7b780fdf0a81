"""Run dbtui in a subprocess as a user without root's power to read through any permission."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
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


# Each command as `python -m dbtui` runs it (dbtui/__main__.py), its output and exit status kept apart from the others'.
_COMMANDS = """
import contextlib, io, json, os, sys
from dbtui.cli import main
said = []
for args, cwd in json.load(sys.stdin):
    os.chdir(cwd)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(args)
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else 1
    said.append([code, out.getvalue(), err.getvalue()])
print(json.dumps(said))
"""


def dbtui_commands_as_a_user(commands: Sequence[tuple[Sequence[str], Path]]) -> list[subprocess.CompletedProcess[str]]:
    """What each ``(ARGS, cwd)`` of ``commands`` gives, as ``dbtui_as_a_user(*ARGS, cwd=cwd)`` would, run one after the
    other in one child: for checks of many folders, which pay the child's import of torch and transformers (~6 s, for
    `dataset check --profile`'s tokenizers) once, not once each."""
    asked = json.dumps([[list(args), str(cwd)] for args, cwd in commands])
    done = subprocess.run([*AS_A_USER, sys.executable, "-c", _COMMANDS], input=asked, capture_output=True, text=True,
                          timeout=600, check=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "250"})
    return [subprocess.CompletedProcess(["dbtui", *args], code, out, err)
            for (args, _), (code, out, err) in zip(commands, json.loads(done.stdout.splitlines()[-1]), strict=True)]
