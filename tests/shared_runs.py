"""Runs that tests of several files read, trained once for the whole pytest run: pytest-xdist builds a session fixture
once per worker, so a run wanted by files on both workers is built here once, under a lock, and read from disk by
every worker. Tests only read these runs; one that changes a run works on its own copy (``own_copy``, shutil.copytree):
the other worker reads the run at the same time. Each worker checks at its end that the run is as built."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from filelock import FileLock

TINY_SCORERS = {"clip_model": "builtin:tiny-clip", "dino_model": "builtin:tiny-dino"}
PLAIN_STEPS = 4


def built_once(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], dict[str, Any]]) -> tuple[Path, dict[str, Any]]:
    """(the folder ``build`` filled, what it returned), built by the first worker to ask and read by the others.
    Under xdist a worker's temporary folder is one of the run's (pytest-N/popen-gwX): their parent is shared."""
    root = tmp_path_factory.getbasetemp()
    if "PYTEST_XDIST_WORKER" in os.environ:
        root = root.parent
    folder, done = root / name, root / f"{name}.json"
    with FileLock(str(root / f"{name}.lock")):
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)  # what a build that failed in another worker left
            folder.mkdir()
            done.write_text(json.dumps(build(folder)), encoding="utf-8")
    return folder, json.loads(done.read_text(encoding="utf-8"))


class PlainRun(NamedTuple):
    """One `dbtui run P --plain`, finished: P, its exit status, what it printed, whether it was still running when it
    printed step 1, and its run folder."""

    path: Path
    returncode: int
    out: str
    seen_running: bool
    run: Path


def _plain_scored_run(tmp: Path) -> dict[str, Any]:
    from tests.runs_helpers import dbtui, profile_file

    path = profile_file(
        tmp, concepts=[{"instance_dir": "builtin:demo-instance", "instance_prompt": "photo of zwx disc",
                        "class_prompt": "photo of a disc"}],
        training={"max_train_steps": PLAIN_STEPS}, sampling={"num_images": 1, "steps": 2, "every_n_steps": 2},
        evaluation={"enabled": True, "prompts": ["photo of zwx disc", "photo of a disc"], "images_per_prompt": 1, **TINY_SCORERS},
        saving={"every_n_steps": 2, "keep_last_n": 2, "export": ["diffusers"]}, logging={"every_n_steps": 1})
    process = dbtui("run", str(path), "--plain", stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen_running = False
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.startswith(f"step 1/{PLAIN_STEPS}"):
            seen_running = process.poll() is None
    process.wait(timeout=600)
    run = tmp / "runs" / "t"
    return {"path": str(path), "returncode": process.returncode, "out": "".join(lines), "seen_running": seen_running,
            "run": str(run), "tree": tree(run)}


def tree(folder: Path) -> dict[str, list[int]]:
    """[size, modification time] of ``folder`` and of everything in it, by path: a file or folder made, changed or
    deleted in it (even made and deleted again, as a launch's RUN/.launching) changes it."""
    if not folder.exists():
        return {}  # a run that failed to start: the tests say so, with what it printed
    return {str(path.relative_to(folder)): [path.stat().st_size, path.stat().st_mtime_ns]
            for path in (folder, *folder.rglob("*"))}


def own_copy(made: PlainRun, tmp_path: Path) -> Path:
    """The run copied into ``tmp_path`` (runs/NAME) with its profile, whose saving.output_dir is the copy's: the profile
    to give a test that launches, exports or otherwise writes into the run."""
    from engine.profile import load_profile, save_profile

    shutil.copytree(made.run, tmp_path / "runs" / made.run.name)
    profile = load_profile(made.path)
    saving = profile.saving.model_copy(update={"output_dir": str(tmp_path / "runs")})
    return save_profile(profile.model_copy(update={"saving": saving}), tmp_path / made.path.name)


@pytest.fixture(scope="session")
def plain_scored_run(tmp_path_factory: pytest.TempPathFactory, tiny_sd1: Path, demo_data: Path) -> Iterator[PlainRun]:
    """One tiny scored run through the trainer process (`dbtui run P --plain`, a line a step): previews and scores at
    steps 2 and 4 (and the base model), a checkpoint at step 2, a diffusers folder at the end."""
    _, made = built_once(tmp_path_factory, "plain-scored-run", _plain_scored_run)
    run = Path(made["run"])
    yield PlainRun(Path(made["path"]), made["returncode"], made["out"], made["seen_running"], run)
    assert tree(run) == made["tree"], f"a test wrote into the shared run {run}: give it its own copy (own_copy)"
