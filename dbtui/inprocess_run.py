"""Stand-in for ``engine.runs.launcher.start_run`` until it lands: train in a thread of this process.

It writes the same run folder (events.jsonl, state.json, control/, checkpoints/) so the
dashboard follows it exactly as it will follow a detached trainer. Two differences remain:
closing the app ends the run, and a checkpoint holds the weights only (no optimizer state),
because the trainer has no resumable checkpoint yet. Delete this module when the launcher lands.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from engine.events import CheckpointSaved
from engine.profile import Profile
from engine.run import run_dir_for, train
from engine.runs.control import take_requests
from engine.runs.folder import RunFolder, RunState


def _fresh_folder(profile: Profile) -> RunFolder:
    """The profile's run folder, or name-2, name-3… when an earlier run is there."""
    base = run_dir_for(profile)
    path, n = base, 1
    while (path / "events.jsonl").exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return RunFolder(path).create()


def save_checkpoint(trainer, step: int) -> Path:
    from engine.outputs import atomic_folder, save_lora, save_pipeline

    started = time.perf_counter()
    target = RunFolder(trainer.run_dir).checkpoints / f"step-{step:08d}"
    unet = trainer.accelerator.unwrap_model(trainer.unet)
    text_encoder = trainer.accelerator.unwrap_model(trainer.text_encoder)
    if trainer.profile.training.method == "lora":
        trained_te = text_encoder if trainer.profile.training.train_text_encoder else None
        atomic_folder(target, lambda tmp: save_lora(tmp, unet, trained_te))
    else:
        atomic_folder(target, lambda tmp: save_pipeline(tmp, trainer.components, unet, text_encoder, unet_half=False))
    trainer.emit(CheckpointSaved(step=step, path=str(target), seconds=time.perf_counter() - started))
    return target


def start_run(profile: Profile) -> RunFolder:
    folder = _fresh_folder(profile)
    cancel = threading.Event()
    state = RunState(pid=os.getpid(), status="running", started=time.time(), heartbeat=time.time())
    folder.write_state(state)
    progress = {"step": 0, "total": 0}

    def control(trainer, step: int) -> None:
        requests = take_requests(folder)
        progress.update(step=step, total=trainer.total_steps)
        folder.write_state(RunState(os.getpid(), "running", step, trainer.total_steps, time.time(), None, state.started))
        if requests & {"save", "stop"}:
            save_checkpoint(trainer, step)
        if "sample" in requests:
            trainer.sample(step)
        if "stop" in requests:
            cancel.set()

    def run() -> None:
        status = "failed"
        try:
            status = train(profile, folder.path, step_hooks=[control], cancel=cancel).status
        except Exception:  # noqa: BLE001 - train() has reported it as a RunFailed event already
            pass
        finally:
            folder.write_state(RunState(os.getpid(), status, progress["step"], progress["total"], time.time(), None, state.started))

    threading.Thread(target=run, name=f"dbtui-run-{profile.name}", daemon=True).start()
    return folder
