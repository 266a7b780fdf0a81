"""A lean end: no walk of every object the libraries made, once the work is done."""

from __future__ import annotations

import gc
import subprocess
import sys
import weakref
from pathlib import Path

import pytest
import torch

from engine.training.accelerator import free_memory
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


def test_the_accelerator_lets_go_of_what_it_holds_without_walking_every_object() -> None:
    """accelerate's free_memory collects garbage before it drops its references, so that collection freed nothing of
    them and walked every object of the process: 0.9 s at the end of each run on 2 loaded cores."""
    from accelerate import Accelerator

    accelerator = Accelerator(cpu=True)
    model = accelerator.prepare(torch.nn.Linear(2, 2))
    held = weakref.ref(model)
    walked: list[int] = []

    def full_collection(phase: str, info: dict) -> None:
        if phase == "start" and info["generation"] == 2:
            walked.append(len(gc.get_objects()))

    gc.unfreeze()  # what conftest froze for the suite's speed: every object is walked, as in a run's process
    everything = len(gc.get_objects())
    gc.callbacks.append(full_collection)
    try:
        free_memory(accelerator)
    finally:
        gc.callbacks.remove(full_collection)
    assert walked, "accelerate's free_memory no longer collects: free_memory here has nothing to skip"
    assert everything > 50_000 and max(walked) < everything / 100
    del model
    assert held() is None  # the accelerator held it no longer
    assert gc.get_freeze_count() == 0  # every object goes back to the collector


def test_a_test_after_an_in_process_run_starts_without_a_walk_of_every_object() -> None:
    """The engine's free_memory (the end of every in-process run) unfreezes every object; the suite's freeze, which
    froze again whenever nothing was frozen, then walked them all at the next test's start: 0.3 s of CPU per test
    after an in-process run (1 s loaded), +12% CPU on tests/test_training.py."""
    from accelerate import Accelerator

    from tests.gc_freeze import freeze_at_an_import_wave

    accelerator = Accelerator(cpu=True)
    freeze_at_an_import_wave()  # this test's own imports, if a wave: the check below starts from no new imports
    free_memory(accelerator)
    assert gc.get_freeze_count() == 0
    walks: list[int] = []

    def full_collection(phase: str, info: dict) -> None:
        if phase == "start" and info["generation"] == 2:
            walks.append(1)

    gc.callbacks.append(full_collection)
    try:
        frozen = freeze_at_an_import_wave()  # as the next test's start runs it
    finally:
        gc.callbacks.remove(full_collection)
    assert not frozen and walks == []
