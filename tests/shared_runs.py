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


# The trainer process under accelerate launch with a disk too small for a checkpoint on the second process alone (as
# on a second machine, whose own disk holds no checkpoint): the main process's disk decides for both.
WORKER_SMALL_DISK_ON_THE_SECOND_PROCESS = """
import os, sys
from collections import namedtuple
import engine.runs.checkpoints as checkpoints
from engine.runs.worker import main
if os.environ["RANK"] == "1":
    usage = namedtuple("usage", "total used free")
    checkpoints.shutil.disk_usage = lambda path: usage(10**9, 10**9 - 1024, 1024)
sys.exit(main(sys.argv[1:]))
"""


class TwoProcessRun(NamedTuple):
    """One run of two processes started by `start_run` (accelerate launch), finished: its command, its exit status,
    the end of its log, and its run folder."""

    command: list[str]
    returncode: int
    log: str
    run: Path


def _two_process_run(tmp: Path) -> dict[str, Any]:
    from engine.runs import launcher
    from tests.training_helpers import tiny_profile

    script = tmp / "small_disk.py"
    script.write_text(WORKER_SMALL_DISK_ON_THE_SECOND_PROCESS)
    worker_command = launcher.worker_command

    def small_disk_on_the_second_process(profile: Any, run_dir: Path, extra: Any = ()) -> list[str]:
        command = worker_command(profile, run_dir, extra)
        at = command.index("-m", 3)  # python -m accelerate.commands.launch OPTIONS… -m engine.runs.worker RUN …
        return [*command[:at], str(script), *command[at + 2:]]

    profile = tiny_profile(tmp, training={"max_train_steps": 3}, saving={"every_n_steps": 2},
                           launch={"num_processes": 2, "extra_args": ["--main_process_port", "29517"]})
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(launcher, "worker_command", small_disk_on_the_second_process)
        started = launcher.start_run(profile)
    returncode = started.process.wait(timeout=600)
    return {"command": started.command, "returncode": returncode, "log": started.folder.log.read_text()[-3000:],
            "run": str(started.folder.path), "tree": tree(started.folder.path)}


@pytest.fixture(scope="session")
def two_process_run(tmp_path_factory: pytest.TempPathFactory, tiny_sd1: Path, demo_data: Path) -> Iterator[TwoProcessRun]:
    """One tiny run of two processes through `start_run` (accelerate launch, gloo): 3 steps, a checkpoint at step 2, a
    diffusers folder at the end; the second process's disk says it has no room for a checkpoint, which the main
    process's decides for both. Three processes (the launcher and two trainers) cost some 28 s of CPU: test_runs_resume
    reads the run's events and outputs, test_stop_everywhere its checkpoints."""
    _, made = built_once(tmp_path_factory, "two-process-run", _two_process_run)
    run = Path(made["run"])
    yield TwoProcessRun(made["command"], made["returncode"], made["log"], run)
    assert tree(run) == made["tree"], f"a test wrote into the shared run {run}"


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
