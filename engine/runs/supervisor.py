"""The trainer process's side of a run folder: state, heartbeat, control requests, periodic and
requested checkpoints, resume, signals and the loss watchdog. Plugs into the Trainer as hooks."""

from __future__ import annotations

import math
import os
import shutil
import signal
import threading
import time
from pathlib import Path
from typing import Any

from engine.events import Warning
from engine.runs.checkpoints import PARTIAL, Checkpointer, CheckpointError, complete_checkpoints, read_manifest
from engine.runs.control import take_requests
from engine.runs.folder import RunFolder, RunState
from engine.training.watchdogs import NonFiniteLossError


class Supervisor:
    def __init__(self, folder: RunFolder, *, resume: Path | None = None, cancel: threading.Event | None = None,
                 main_process: bool = True):
        self.folder = folder
        self.main_process = main_process  # the one that writes the run's state
        self.resume: Path | None = None
        self.resume_step = 0
        self.cancel = cancel or threading.Event()
        self.stop_requested = False
        self.training = False  # this attempt has trained a step: a stop from now on saves one first
        self.started = time.time()
        self._last_beat = 0.0
        self.checkpointer: Checkpointer | None = None
        self.trainer: Any = None
        # Where the run stood when this attempt began (the launcher carries it into "starting"): a resume
        # that fails before its trainer knows its step still shows the run's step, not 0/0.
        before = folder.read_state()
        self._step_before, self._total_before = (before.step, before.total_steps) if before else (0, 0)
        self._loss_before = before.last_loss if before and before.last_loss is not None and math.isfinite(before.last_loss) else None
        if resume is not None:
            self.resume_from(resume)

    def resume_from(self, checkpoint: Path) -> None:
        """Load ``checkpoint`` once set up. Until then the run stands at its step (its manifest's), not the state's:
        a resume from an earlier checkpoint sets that later step's branch aside, and a stop in setup reports this one."""
        self.resume = checkpoint
        try:
            step = int(read_manifest(checkpoint)["step"])
        except (CheckpointError, KeyError, TypeError, ValueError):
            return  # its load says what is wrong with it, as the run's failure
        if step != self._step_before:  # the state's loss is of a step after the checkpoint's, lost with it
            self._loss_before = None
        self.resume_step = self._step_before = step

    # -- signals -------------------------------------------------------------------
    def install_signals(self) -> None:
        """First SIGINT/SIGTERM: save at the step boundary and stop (before this attempt's first step: stop before it,
        with nothing to save). Second SIGINT: exit now. SIGHUP (the terminal or the SSH connection closing) is ignored:
        losing the connection never stops training, in the foreground too, and `dbtui attach` follows the run again."""

        def on_signal(signum: int, frame: Any) -> None:
            if self.stop_requested and signum == signal.SIGINT:
                if self.main_process:
                    # Stopped, not crashed: `dbtui runs` lists it so, and resume takes the latest checkpoint. With the
                    # last step's loss: without it the state showed the attempt before's, or none.
                    self.write_state("stopped", *self.position(), getattr(self.trainer, "last_loss", None))
                os._exit(130)
            self.stop_requested = True
            if not self.training:
                self.cancel.set()

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)

    def watch_setup_requests(self, every: float = 1.0) -> None:
        """Until the first step is trained, a stop asked through the control folder is acted on as SIGTERM is: class
        images, caching and the base round take many minutes on a real model, and `dbtui stop` must not wait for them.
        (From the first step on, ``on_step`` takes every request.)"""
        stop = self.folder.control / "stop"

        def poll() -> None:
            while not self.training and not self.cancel.is_set():
                try:
                    stop.unlink()
                except FileNotFoundError:
                    time.sleep(every)
                    continue
                self.stop_requested = True
                self.cancel.set()

        threading.Thread(target=poll, name="setup-requests", daemon=True).start()

    # -- state ---------------------------------------------------------------------
    def position(self) -> tuple[int, int]:
        """(step, total steps): the trainer's once it knows them, else the run's before this attempt."""
        trainer = self.trainer
        step = getattr(trainer, "global_step", 0) or self._step_before
        return step, getattr(trainer, "total_steps", 0) or self._total_before

    def write_failed(self) -> None:
        self.write_state("failed", *self.position(), getattr(self.trainer, "last_loss", None))

    def write_state(self, status: str, step: int = 0, total: int = 0, loss: float | None = None) -> None:
        if loss is None or not (math.isfinite(loss) or self.training):
            # No step yet in this attempt (the trainer's loss is nan until one): the run's last one stays shown. A step
            # whose loss became nan is shown as it is, as the events log says it.
            loss = self._loss_before
        self.folder.write_state(RunState(pid=os.getpid(), status=status, step=step, total_steps=total,
                                         heartbeat=time.time(), last_loss=loss, started=self.started))

    # -- hooks ---------------------------------------------------------------------
    def attach(self, trainer: Any) -> None:
        """After setup, before the first step: checkpointing, and resume when asked."""
        self.trainer = trainer
        self.checkpointer = Checkpointer(trainer, self.folder)
        if self.resume is not None:
            trainer.rounds.score_base_again()  # while the models are the base model's: the checkpoint loads next
            self.checkpointer.load(self.resume)
        if trainer.accelerator.is_main_process:
            self._take_setup_stop()
            # Still "starting" until the first step: a stop before it ends the run with nothing saved, as `dbtui stop`
            # and the wizard say by this state; the first step's heartbeat says "running".
            self.write_state("starting", trainer.global_step, trainer.total_steps)

    def _take_setup_stop(self) -> None:
        """A stop asked in set-up's last second, which the set-up watcher (asleep between looks) has not taken: it
        ends the run before the first step, as set-up's stops do, not after a step and a checkpoint."""
        try:
            (self.folder.control / "stop").unlink()
        except FileNotFoundError:
            return
        self.stop_requested = True
        self.cancel.set()

    def _kept_checkpoint(self, step: int) -> str:
        """What a run whose loss became NaN at ``step`` leaves: a run that failed before its first checkpoint has none.
        A checkpoint of the step before holds the weights that gave the NaN (a huge rate's: their images are NaN too)."""
        done = [saved for saved, _ in complete_checkpoints(self.folder)]
        if not done:
            return "no checkpoint was saved before it, so a new try trains from the start"
        good = [saved for saved in done if saved < step - 1]
        kept = (f"its last good checkpoint (step {good[-1]}) is kept" if good
                else "no earlier one is kept, so a new try trains from the start")
        if done[-1] < step - 1:
            return kept
        return f"the checkpoint of step {done[-1]} holds the weights that gave it (a resume from it fails again at once); {kept}"

    def save_last_step(self, step: int) -> Path | None:
        """The final export failed: the trained weights kept in a checkpoint of the last step, which `dbtui resume`
        exports without training again (the steps since the last checkpoint were lost with the process). Its optimizer
        state is already freed for the export (Trainer.release_training_state). Its folder, or None where it could not
        be saved. Every process of the run calls it (in_process.train), as every one takes part in a save."""
        from engine.training.distributed import main_process_says

        trainer, checkpointer = self.trainer, self.checkpointer
        if checkpointer is None:
            return None
        kept = dict(complete_checkpoints(self.folder)).get(step)
        if main_process_says(trainer.accelerator, kept is not None):  # as machine 0's disk says: all save, or none
            return kept
        try:
            # Not refused by the estimate, which counts the optimizer's state: only the write tells whether it fits.
            return checkpointer.save(step, reason="export", check_space=False)
        except Exception as error:
            if not trainer.accelerator.is_main_process:
                # Its warning would reach no record (the main process's), and the folder is the main process's too:
                # the run's own handling reports it, and the launcher ends the other processes.
                raise
            shutil.rmtree(self.folder.checkpoints / f"step-{step:08d}{PARTIAL}", ignore_errors=True)
            trainer.emit(Warning(message=f"the checkpoint of step {step} could not be saved either: {error}"))
            return None

    def on_step(self, trainer: Any, step: int) -> None:
        self.training = True
        loss = trainer.last_loss
        if not math.isfinite(loss):
            raise NonFiniteLossError(f"the loss became {loss} at step {step}; {self._kept_checkpoint(step)}")
        if self.checkpointer is not None:
            self.checkpointer.rotate_after_good_step()  # the checkpoint before this step gave a finite loss
        main = trainer.accelerator.is_main_process
        if main and time.time() - self._last_beat >= 1.0:
            self._last_beat = time.time()
            self.write_state("running", step, trainer.total_steps, loss)
        requests = take_requests(self.folder) if main else set()
        if self.stop_requested:
            requests.add("stop")
        if trainer.accelerator.num_processes > 1:
            from accelerate.utils import broadcast_object_list

            requests = broadcast_object_list([requests])[0]
        if "stop" in requests:
            self.stop_requested = True  # a SIGINT from now on (a second Ctrl-C, passed on by accelerate) ends it at once
        every = trainer.profile.saving.every_n_steps
        if "sample" in requests:
            trainer.sample(step)
        periodic = bool(every) and step % every == 0 and step < trainer.total_steps
        if periodic or requests & {"save", "stop"}:
            reason = "stop" if "stop" in requests else "request" if "save" in requests else "interval"
            assert self.checkpointer is not None
            self.checkpointer.save(step, reason=reason)
        if "stop" in requests:
            trainer.cancel.set()
