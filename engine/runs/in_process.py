"""Running a profile end to end in this process: the entry point the worker and tests use."""

from __future__ import annotations

import shlex
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import NoReturn

from engine.support.deferred_import import defer_seldom_used

# Before the trainer's imports: diffusers and peft import bitsandbytes and scipy.stats, which few runs use
# (engine/support/deferred_import.py).
defer_seldom_used()

import torch  # noqa: E402

from engine.errors import DbtuiError, os_error_in  # noqa: E402
from engine.events import Event, RunFailed, RunFinished, Warning  # noqa: E402
from engine.runs.base_identity import base_model_record, write_record  # noqa: E402
from engine.runs.file_errors import (base_model_gone, how_it_goes_on, kept_for_export, named_full_disk,  # noqa: E402
                                     run_files_error)
from engine.runs.folder import run_dir_for  # noqa: E402
from engine.runs.library_noise import hide_library_progress_bars, hold_back_library_noise  # noqa: E402
from engine.profile import Profile, save_profile  # noqa: E402
from engine.memory.savers import memory_advice  # noqa: E402
from engine.training.watchdogs import NonFiniteLossError, OutOfMemoryAdviceError, peer_process_lost  # noqa: E402
from engine.runs.sinks import Emitter, JsonlSink  # noqa: E402
from engine.training.distributed import main_process_says  # noqa: E402
from engine.training.run_total import KeptTotal  # noqa: E402
from engine.training.trainer import RunResult, StepHook, StoppedInSetup, Trainer  # noqa: E402


def train(
    profile: Profile,
    run_dir: Path | None = None,
    *,
    sinks: Iterable[Callable[[Event], None]] = (),
    cancel: threading.Event | None = None,
    step_hooks: list[StepHook] | None = None,
    trainer_hook: Callable[[Trainer], None] | None = None,
    epoch_leftovers: bool = True,
    start_step: int = 0,
    kept_total: KeptTotal | None = None,
    save_last_step: Callable[[int], Path | None] | None = None,
) -> RunResult:
    """Train ``profile`` into ``run_dir``; every event also goes to ``run_dir/events.jsonl``.

    ``trainer_hook`` runs after setup and before the first step (resume and control use it). ``start_step``: a
    resume's, from its checkpoint's manifest; the hook's load sets it again, and a stop or failure before it reports it.
    ``kept_total``: a resume's, where it goes on to the total steps its checkpoint recorded (resume_length.kept_total).
    ``save_last_step``: where the final export fails, what keeps the weights trained in a checkpoint of the last step
    (the supervisor's); its folder, or None where it could not.
    Raises the DbtuiError that failed the run, after reporting it as a RunFailed event.
    """
    hold_back_library_noise()
    # Their bars went to the run's log, whose tail a failed run shows; dbtui's own phases say what loads and saves.
    hide_library_progress_bars()
    run_dir = Path(run_dir or run_dir_for(profile))
    run_dir.mkdir(parents=True, exist_ok=True)
    jsonl: JsonlSink | None = None
    emitter = Emitter(sinks)
    trainer = Trainer(profile, run_dir, emit=emitter, cancel=cancel, step_hooks=step_hooks, epoch_leftovers=epoch_leftovers)
    trainer.global_step = start_step
    trainer.kept_total = kept_total
    started = time.perf_counter()
    kept: Path | None = None  # a checkpoint of the last step, saved as the final export failed
    try:
        from engine.training.distributed import process_state

        if process_state().is_main_process:
            # The main process's alone: another machine's profile (its own machine_rank) may share this disk.
            save_profile(profile, run_dir / "profile.toml")  # whole or not at all: a resume reads it
            jsonl = JsonlSink(run_dir / "events.jsonl")
            emitter.sinks.insert(0, jsonl)
        trainer.setup()
        base_model = base_model_record(profile.model.pretrained, trainer.components.folder)  # as loaded, not as at the end
        if trainer_hook:
            trainer_hook(trainer)
        result = trainer.train()
        if result.status == "finished":
            trainer.release_training_state()
            # The model first: a final preview that fails (out of memory, say) must not lose it.
            failed: Exception | None = None
            try:
                result.outputs = trainer.save_outputs()
            except Exception as error:
                failed = error
            # Every process takes part in the save of the last step's checkpoint, or none does: the main process's
            # export decides (the others' returned at once), and a save's collectives wait for every process.
            export_failed = main_process_says(trainer.accelerator, failed is not None)
            if export_failed and save_last_step:
                kept = save_last_step(result.step)
            if failed is not None:
                _export_failed(failed, profile, trainer, run_dir, result.step, kept)
            if export_failed:  # the main process's, which says why: the others end with it, the run not finished
                trainer.end()
                return RunResult("export failed", result.step, result.total_steps)
            if result.outputs:  # the main process's
                write_record(run_dir / "outputs", base_model)
            _final_previews(trainer, result.step, run_dir)
        trainer.end()
        trainer.emit(RunFinished(step=result.step, outputs=result.outputs, seconds=time.perf_counter() - started, status=result.status))
        return result
    except StoppedInSetup:
        trainer.accelerator.end_training()  # nothing is prepared yet: no wrappers to drop first (Trainer.end)
        trainer.emit(RunFinished(step=start_step, outputs={}, seconds=time.perf_counter() - started, status="stopped"))
        return RunResult("stopped", start_step, trainer.total_steps)
    except DbtuiError as error:
        emitter(RunFailed(reason=str(error), advice=getattr(error, "advice", ""), step=trainer.global_step))
        if isinstance(error, NonFiniteLossError):
            # Every process sees the same (averaged) loss, so all stop after the same step with no
            # collective under way: the group can be torn down as after a finished run. After other
            # failures it stays, since tearing it down while another process waits in a collective hangs.
            trainer.end()
        raise
    except torch.OutOfMemoryError as error:
        from engine.training.precision import gpu_has_bf16

        advice = memory_advice(profile, gpu_has_bf16())  # a T4 is offered no setting that needs bf16
        emitter(RunFailed(reason="the GPU ran out of memory", advice=advice, step=trainer.global_step))
        # The advice apart, as every error's: those who print one add its advice (worker.main, the CLI's boundary).
        raise OutOfMemoryAdviceError(f"the GPU ran out of memory at step {trainer.global_step}", advice) from error
    except Exception as error:
        accelerator = getattr(trainer, "accelerator", None)
        lost = peer_process_lost(error, accelerator.num_processes if accelerator is not None else 1, run_dir,
                                 lambda: how_it_goes_on(run_dir, profile.launch.machine_rank, profile.launch.num_machines))
        if lost is not None:
            emitter(RunFailed(reason=str(lost), advice=lost.advice, step=trainer.global_step))
            raise lost from error
        machine = os_error_in(error)  # an OSError, or safetensors' writer's, which says its errno in its text only
        rank = profile.launch.machine_rank  # machine N resumes its part its own way
        files_error = (run_files_error(machine, run_dir, machine_rank=rank, machines=profile.launch.num_machines)
                       if machine is not None else None)
        if files_error is None:
            _report_bug(emitter, trainer, run_dir, error, kept)
            raise
        emitter(RunFailed(reason=str(files_error), advice=files_error.advice, step=trainer.global_step))
        raise files_error from error
    finally:
        if jsonl:
            jsonl.close()


def _final_previews(trainer: Trainer, step: int, run_dir: Path) -> None:
    """The exported model's previews and scores. Out of GPU memory (the bf16 weights widened for the export, say), the
    run is finished all the same, said in a warning: failed with the training's memory advice, a resume trained the
    steps since its last checkpoint again, exported them, and ran out of memory here again."""
    try:
        trainer.sample(step)
    except torch.OutOfMemoryError:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        trainer.emit(Warning(
            message=f"the GPU ran out of memory making the previews of step {step}, after the model was exported to "
                    f"{run_dir / 'outputs'}: the run is finished without them",
            advice="fewer previews at a time (sampling.num_images) need less memory; close other programs that use the "
                   "GPU (`nvidia-smi` lists them)"))


def _export_failed(error: Exception, profile: Profile, trainer: Trainer, run_dir: Path, step: int, kept: Path | None) -> NoReturn:
    """Raise the final export's failure (``error``) as the user is to read it, with ``kept``: the checkpoint of the last
    ``step`` saved as it failed, or None where none could be."""
    if kept is not None and isinstance(error, torch.OutOfMemoryError):
        # The memory advice is for training: the export of the kept weights needs no change of settings.
        raise OutOfMemoryAdviceError(
            f"the GPU ran out of memory in the final export after step {step}",
            f"{_kept_for_export(run_dir, step, kept)}, in a new process, without what training held on the GPU (close "
            "other programs that use it: `nvidia-smi` lists them)") from error
    gone = base_model_gone(profile.model.pretrained, Path(trainer.components.folder), run_dir, vae=profile.model.vae,
                           tokenizer=profile.model.tokenizer)
    if gone is not None:
        raise gone from error
    full = named_full_disk(error, run_dir / "outputs")
    said = kept_for_export(full or error, run_dir, step, kept, profile.launch.num_machines) if kept else None
    if said is not None:
        raise said from error
    if full is None:
        raise error
    raise full from error


def _report_bug(emitter: Emitter, trainer: Trainer, run_dir: Path, error: Exception, kept: Path | None = None) -> None:
    """An error no check of ours foresaw: the run fails as a bug, with its traceback beside the log. ``kept``: the
    checkpoint of the last step saved as the final export failed, which the user would otherwise not know of."""
    advice = "this is a bug in dbtui; the traceback is in the run's log"
    if kept is not None:
        advice += f"; {_kept_for_export(run_dir, trainer.global_step, kept)}"
    emitter(RunFailed(reason=f"{type(error).__name__}: {error}", advice=advice, step=trainer.global_step))
    # Errors may name a file of bytes that are not UTF-8 (a lone surrogate): written as an escape, not a second error.
    (run_dir / "traceback.txt").write_text(traceback.format_exc(), encoding="utf-8", errors="backslashreplace")


def _kept_for_export(run_dir: Path, step: int, kept: Path) -> str:
    """Where the weights of a run whose final export failed are kept (``kept``, the checkpoint of its last ``step``),
    and the commands that export them."""
    run = shlex.quote(str(run_dir))
    return (f"the weights trained are kept in the checkpoint of step {step} ({kept}): `dbtui resume {run}` exports them "
            f"without training again, as does `dbtui export {run} --step {step}`")
