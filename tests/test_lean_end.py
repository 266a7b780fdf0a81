"""A lean end: no walk of every object the libraries made, once the work is done."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.runs_helpers import ROOT, env

# Runs the module as `python -m` does, and says at exit, before the interpreter's last collection, how many objects
# that collection skips.
AT_EXIT = ("import atexit, gc, runpy, sys; "
           "atexit.register(lambda: print('frozen at exit:', gc.get_freeze_count(), flush=True)); "
           "sys.argv = sys.argv[1:]; runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)")


@pytest.mark.parametrize("module", ["engine.runs.worker", "engine.runs.fit_process", "engine.memory"])
def test_a_process_of_the_engine_leaves_its_objects_to_its_end(module: str, tmp_path: Path) -> None:
    """The trainer's, the fit test's and the meter's processes import torch, transformers and diffusers: the
    interpreter's last collection walked and freed their half a million objects one by one, 6.4 s after a tiny
    run's main returned on 2 loaded cores. Frozen, they go with the process. Here each fails at once (no profile), as
    early as an exit can come."""
    missing = tmp_path / "missing"
    args = [str(missing)] if module == "engine.runs.worker" else [str(missing / "profile.toml")]
    done = subprocess.run([sys.executable, "-c", AT_EXIT, module, *args], cwd=ROOT, env=dict(env(), OMP_NUM_THREADS="1"),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 1, done.stderr[-3000:]
    frozen = int(done.stdout.split("frozen at exit:")[-1])
    assert frozen > 10_000, done.stdout[-2000:]

