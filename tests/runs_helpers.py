"""Helpers for run-supervision tests: profiles on disk and trainer processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.profile import Profile, save_profile
from engine.runs.control import request
from engine.runs.folder import RunFolder, run_dir_for
from tests.free_ports import free_port
from tests.training_helpers import tiny_profile

ROOT = Path(__file__).parents[1]


def profile_file(tmp_path: Path, **sections: Any) -> Path:
    return save_profile(tiny_profile(tmp_path, **sections), tmp_path / "p.toml")


def env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")


def python(code: str, *args: str, **kwargs: Any) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=ROOT, env=env(), **kwargs)


def dbtui(*args: str, **kwargs: Any) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "dbtui", *args], cwd=ROOT, env=env(), **kwargs)


def launch_two_processes(script: Path, *args: str) -> subprocess.CompletedProcess:
    """Run ``script`` under ``accelerate launch`` as two CPU (gloo) processes, on a free port."""
    port = free_port()
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
               "--dynamo_backend", "no", "--main_process_port", str(port), str(script), *args]
    return subprocess.run(command, cwd=ROOT, env=env(), capture_output=True, text=True, timeout=600)


def wait_for(predicate, timeout: float = 240.0, poll: float = 0.2) -> Any:
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError("timed out waiting")


def step_of(folder: RunFolder) -> int:
    state = folder.read_state()
    return state.step if state else 0


# Runs the worker, killing itself with SIGKILL right after the given step (its checkpoint, if any, is done).
KILL_AFTER_STEP = """
import os, signal, sys
from engine.training.trainer import Trainer
from engine.runs.worker import main
kill_at = int(sys.argv[2])
original = Trainer.after_step
def after_step(self, step):
    original(self, step)
    if step == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
Trainer.after_step = after_step
sys.exit(main([sys.argv[1]] + sys.argv[3:]))
"""

# Runs the worker, killing itself at the rename that would publish the checkpoint of the given step.
KILL_AT_RENAME = """
import os, signal, sys
import engine.runs.checkpoints as checkpoints
from engine.runs.worker import main
target = "step-%08d.partial" % int(sys.argv[2])
real_replace = os.replace
class Os:
    def __getattr__(self, name):
        return getattr(os, name)
    def replace(self, src, dst):
        if str(src).endswith(target):
            os.kill(os.getpid(), signal.SIGKILL)
        return real_replace(src, dst)
checkpoints.os = Os()
sys.exit(main([sys.argv[1]]))
"""

# Under accelerate launch: trains 2 steps, checkpoints, trains a third, restores the checkpoint.
# The main process writes JSON: per process, digests of the trained weights after step 2 and of
# the noise generator at the save and after the restore. After the trainer ends, each process
# writes the names of its threads still alive to threads-<process index>.json beside it.
RANKS_AFTER_RESUME = """
import hashlib, json, os, sys
from pathlib import Path
from engine.support.deferred_import import defer_seldom_used
defer_seldom_used()  # as the trainer's process does (engine/runs/in_process.py): bitsandbytes' import compiles kernels
from accelerate.utils import gather_object
from engine.profile import load_profile
from engine.runs.checkpoints import Checkpointer
from engine.runs.folder import RunFolder
from engine.training.trainer import Trainer
profile_path, out = Path(sys.argv[1]), Path(sys.argv[2])
folder = RunFolder(out.parent / "run").create()
trainer = Trainer(load_profile(profile_path), folder.path)
trainer.setup()
checkpointer = Checkpointer(trainer, folder)
digest = lambda tensors: hashlib.sha256(b"".join(t.detach().cpu().float().numpy().tobytes() for t in tensors)).hexdigest()[:16]
trainer.total_steps = 2
trainer.train()
mine = {"unet": digest(trainer.unet_params), "text_encoder": digest(trainer.text_params), "generator_at_save": digest([trainer.generator.get_state()])}
path = checkpointer.save(2)
trainer.total_steps = 3
trainer.train()
mine["generator_later"] = digest([trainer.generator.get_state()])
checkpointer.load(path)
mine["generator_restored"] = digest([trainer.generator.get_state()])
ranks = gather_object([mine])
if trainer.accelerator.is_main_process:
    out.write_text(json.dumps(ranks))
trainer.end()
threads = [Path(f"/proc/self/task/{task}/comm").read_text().strip() for task in os.listdir("/proc/self/task")]
out.with_name(f"threads-{trainer.accelerator.process_index}.json").write_text(json.dumps(threads))
"""

# Under accelerate launch: the worker on RUN_DIR, with the second process's loss NaN from step 2.
# When the worker returns, each process writes the names of its threads still alive to
# RUN_DIR/threads-<rank>.json.
WORKER_NAN_ON_ONE_PROCESS = """
import json, os, sys
from pathlib import Path
from engine.training.trainer import Trainer
from engine.runs.worker import main
original = Trainer.loss
def loss(self, batch):
    value = original(self, batch)
    return value * float("nan") if self.accelerator.process_index == 1 and self.global_step >= 2 else value
Trainer.loss = loss
status = main([sys.argv[1]])
threads = [Path(f"/proc/self/task/{task}/comm").read_text().strip() for task in os.listdir("/proc/self/task")]
Path(sys.argv[1], f"threads-{os.environ['RANK']}.json").write_text(json.dumps(threads))
sys.exit(status)
"""


# `dbtui run ARGS…` whose trainer holds at the step STEP until a Ctrl-C reaches it, first making the file HELD: the
# Ctrl-C lands during the run however slow its steps, which no count of steps made sure of on a loaded machine.
DBTUI_RUN_HELD_AT_A_STEP = """
import sys
from engine.runs import launcher
from dbtui.cli import main
worker_command = launcher.worker_command
def held(profile, run_dir, extra=()):
    python, _, _, *worker = worker_command(profile, run_dir, extra)  # python -m engine.runs.worker RUN …
    return [python, "-c", TRAINER_HELD_AT_A_STEP, sys.argv[1], sys.argv[2], *worker]
launcher.worker_command = held
sys.exit(main(sys.argv[3:]))
"""
TRAINER_HELD_AT_A_STEP = """
import sys, time
from pathlib import Path
from engine.runs.supervisor import Supervisor
from engine.runs.worker import main
held, at = Path(sys.argv[1]), int(sys.argv[2])
on_step = Supervisor.on_step
def held_on_step(self, trainer, step):
    if step == at:
        held.touch()
        deadline = time.monotonic() + 300  # a test that failed before its Ctrl-C leaves no trainer behind for ever
        while not self.stop_requested and time.monotonic() < deadline:
            time.sleep(0.05)
    on_step(self, trainer, step)
Supervisor.on_step = held_on_step
sys.exit(main(sys.argv[3:]))
"""
DBTUI_RUN_HELD_AT_A_STEP = DBTUI_RUN_HELD_AT_A_STEP.replace("TRAINER_HELD_AT_A_STEP", repr(TRAINER_HELD_AT_A_STEP))


def run_with_checkpoints(tmp_path: Path, steps: list[int]) -> tuple[RunFolder, object]:
    """A stopped run folder of the tiny profile whose checkpoints (manifests only) are at ``steps``."""
    import json

    import torch
    from safetensors.torch import save_file

    profile = tiny_profile(tmp_path, training={"max_train_steps": 2000})
    folder = RunFolder(tmp_path / "runs" / profile.name).create()
    save_profile(profile, folder.profile)
    folder.events.write_text("")
    for step in steps:
        checkpoint = folder.checkpoints / f"step-{step:08d}"
        checkpoint.mkdir(parents=True)
        save_file({"step": torch.tensor([step])}, checkpoint / "model.safetensors")
        files = {"model.safetensors": (checkpoint / "model.safetensors").stat().st_size}
        (checkpoint / "manifest.json").write_text(json.dumps({"step": step, "method": "full", "files": files}))
    return folder, profile


def stat_fails_inside(monkeypatch: Any, folder: Path, error: Callable[[Path], OSError]) -> None:
    """Everything inside ``folder`` fails to be stat'ed with ``error(path)`` (another user's folder of mode 700, a stale
    NFS handle), the folder itself not."""
    stat = Path.stat

    def failing(self: Path, *, follow_symlinks: bool = True) -> os.stat_result:
        if folder in self.absolute().parents:
            raise error(self)
        return stat(self, follow_symlinks=follow_symlinks)

    monkeypatch.setattr(Path, "stat", failing)


class CtrlCInSetUp:
    """A display during which Ctrl-C is pressed as the first phase of set-up (the model load) begins. Given the run's
    folder, it first asks the stop that the Ctrl-C handler asks of a trainer in a session of its own."""

    def __init__(self, folder: RunFolder | None = None) -> None:
        self.folder = folder

    def __enter__(self) -> None:
        pass

    def __exit__(self, *exc: object) -> None:
        pass

    def __call__(self, event: Any) -> None:
        if event.kind == "phase_started":
            if self.folder is not None:
                request(self.folder, "stop")
            raise KeyboardInterrupt


def trained_as_by_dbtui_run(profile: Profile) -> RunFolder:
    """``profile`` trained in this process as `dbtui run`'s trainer trains it (checkpoints kept, its state written at
    the end): a trainer process costs its start and a model load, some 10 s, where a test only reads the run."""
    from engine.runs.in_process import train
    from engine.runs.supervisor import Supervisor

    folder = RunFolder(run_dir_for(profile)).create()
    supervisor = Supervisor(folder)
    result = train(profile, folder.path, step_hooks=[supervisor.on_step], trainer_hook=supervisor.attach,
                   save_last_step=supervisor.save_last_step)
    supervisor.write_state(result.status, result.step, result.total_steps, supervisor.trainer.last_loss)
    return folder


class TrainerHere:
    """The launcher's trainer run in this process: ``start_run`` starts a process that does nothing where it would start
    ``python -m engine.runs.worker RUN …`` (some 5 s of CPU on imports before its model loads), and ``train()`` then
    calls that entry point here with the arguments the launcher gave it. For tests of what the launcher hands its
    trainer (the run folder, its profile.toml, its requests), not of the trainer's process.

    ``as_started``: each ``start_run`` trains its run here before it returns, its stand-in process already ended, so a
    command's display (`dbtui run`, `dbtui resume`) then reads the whole run from its folder; the trainer's exit
    statuses are kept in ``statuses``. For tests of what a command says of a run, not of its trainer's process."""

    def __init__(self, monkeypatch: Any, *, as_started: bool = False):
        from engine.runs import launcher

        self.commands: list[list[str]] = []
        self.statuses: list[int] = []
        real = launcher.worker_command

        def recorded(profile: Profile, run_dir: Path, extra: Any = ()) -> list[str]:
            self.commands.append(real(profile, run_dir, extra))
            return [sys.executable, "-c", ""]

        monkeypatch.setattr(launcher, "worker_command", recorded)
        if as_started:
            start_run = launcher.start_run

            def started_then_trained(*args: Any, **kwargs: Any) -> Any:
                started = start_run(*args, **kwargs)
                started.process.wait()
                self.statuses.append(self.train())
                return started

            monkeypatch.setattr(launcher, "start_run", started_then_trained)

    def train(self) -> int:
        from engine.runs.worker import main

        [command] = self.commands
        self.commands.clear()  # trained: a later start_run hands its own
        assert command[1:3] == ["-m", "engine.runs.worker"], command  # a lone trainer, not accelerate's launcher
        return main(command[3:])
