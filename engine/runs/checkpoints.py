"""Resumable checkpoints: written aside, synced, then renamed, so the latest is always whole.

A checkpoint is accelerate's full state (optimizer, grad scaler, RNG states, the LR scheduler
and the trainer's noise generator as registered objects) with the trained weights in diffusers
format through save/load hooks (the denoiser's ``unet/`` or ``transformer/``, or ``lora/``, and
each trained text encoder's ``text_encoder/``…; a frozen one, such as Flux's T5, has none), the concepts' images
trained (``trained_images.json``), and ``manifest.json``, written last. Resume reads the manifest, never the folder name.
"""

from __future__ import annotations

import math
import os
import pickle
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.convert._files import usual_permissions
from engine.convert.older_readers import write_for_older_readers
from engine.data.trained_images import read_image_record
from engine.errors import DbtuiError
from engine.evaluation.best import step_number
from engine.events import CheckpointSaved, Warning
from engine.runs.base_identity import base_model_record
from engine.runs.checkpoint_write import fsync_tree, save_state_aside, unsaved_checkpoint_bytes, write_manifest
from engine.runs.folder import RunFolder, unreadable
from engine.runs.generator_state import GeneratorState
from engine.runs.machine_part import settle_machine_part
from engine.runs.optimizer_layout import layout_mismatch, optimizer_layout
from engine.support.json_file import is_number, read_json_object
from engine.training.distributed import main_process_says
from engine.training.text_encoder_stop import text_encoder_last_step, text_encoder_trains_at

if TYPE_CHECKING:
    from engine.profile import Profile

MANIFEST = "manifest.json"
PARTIAL = ".partial"
PIN_PREFIX = ".export-"  # an export's pin (engine/runs/export_pin.py), beside its checkpoint: no checkpoint of its own


class CheckpointError(DbtuiError):
    """A checkpoint that cannot be resumed from."""


class CheckpointMismatchError(CheckpointError):
    """A checkpoint's weights do not fit the model they are read into (other LoRA settings, another base model)."""


def epoch_leftovers(resume: Path | None) -> bool:
    """Whether a run resumed from ``resume`` trains each epoch's leftover micro-batches as a last, shorter step.
    Checkpoints made before that rule say nothing of it: their run goes on under the rule it began with (the
    leftovers dropped), so the resume stays exact (batch order, epoch length, learning-rate schedule)."""
    if resume is None:
        return True
    try:
        return bool(read_manifest(resume).get("epoch_leftovers", False))
    except CheckpointError:
        return True  # no manifest to read: the load says what is wrong with it


def complete_checkpoints(folder: RunFolder) -> list[tuple[int, Path]]:
    """(step, path) of every checkpoint with a manifest, oldest first."""
    found = []
    try:
        for path in folder.checkpoints.iterdir() if folder.checkpoints.is_dir() else ():
            manifest = path / MANIFEST
            if path.name.endswith(PARTIAL) or path.name.startswith(PIN_PREFIX) or not manifest.is_file():
                continue
            step = step_number(read_json_object(manifest).get("step"))
            if step is not None:  # else damaged (`[]`, a null step): no checkpoint to resume, export or rotate by
                found.append((step, path))
    except PermissionError as error:  # another user's folder, or one chmod-ed: not "none", which a resume starts over on
        raise unreadable(folder.checkpoints, error) from None
    return sorted(found)


def checked_checkpoints(folder: RunFolder) -> tuple[list[int], list[int]]:
    """The steps of the run's complete checkpoints: (whole ones, damaged ones), by ``damage_of``, as export checks them."""
    whole, damaged = [], []
    for step, path in complete_checkpoints(folder):
        try:
            (damaged if damage_of(path) else whole).append(step)
        except CheckpointError:  # its manifest went between the listing and the check
            damaged.append(step)
    return whole, damaged


def latest_checkpoint(folder: RunFolder) -> Path | None:
    found = complete_checkpoints(folder)
    return found[-1][1] if found else None


def damage_of(checkpoint: Path) -> str | None:
    """What is missing from, cut short in or damaged in a checkpoint, by the file sizes its manifest lists and the
    safetensors files' headers; None when all is there (or the manifest predates the list)."""
    from engine.convert.errors import CheckpointReadError
    from engine.convert.file_format import checkpoint_kind

    files = read_manifest(checkpoint).get("files", {})
    if not isinstance(files, dict) or not all(isinstance(size, int) for size in files.values()):
        return f"its {MANIFEST} lists its files in a form dbtui never writes"
    for name, size in files.items():
        file = checkpoint / name
        if not file.is_file():
            return f"{name} is missing"
        if file.stat().st_size != size:
            return f"{name} has {file.stat().st_size:,} bytes where {size:,} were written"
        if file.suffix == ".safetensors":
            try:
                checkpoint_kind(file)  # its header only: the table of tensors must be whole and fill the file
            except CheckpointReadError as error:
                return str(error).split("; ")[0].replace(str(file), name)
    return None


def damage_if_still_there(checkpoint: Path) -> str | None:
    """``damage_of`` for a checkpoint listed a moment ago: None where its manifest went since (a live run's rotation),
    which the command that reads it then finds."""
    try:
        return damage_of(checkpoint)
    except CheckpointError:
        return None


# Where ``newest_whole`` finds none: what `dbtui resume`'s refusal and the hint of `attach`, `stop` and `save` say.
NO_WHOLE_CHECKPOINT = "the run keeps no whole checkpoint, so it can only start again under a new name"


def newest_whole(checkpoints: list[tuple[int, Path]]) -> tuple[int, Path] | None:
    """The newest of ``checkpoints`` (oldest first) that ``damage_of`` finds whole: the one before a damaged latest
    may be cut short too (a copy of the run folder stopped part way), and `--from` it is refused in turn."""
    for step, path in reversed(checkpoints):
        try:
            if damage_of(path) is None:
                return step, path
        except CheckpointError:  # its manifest went since it was listed
            continue
    return None


def read_manifest(path: Path) -> dict[str, Any]:
    manifest = read_json_object(Path(path) / MANIFEST)
    if not manifest:  # missing, unreadable, or not the object dbtui writes (`[]`): every reader's .get would fail on it
        raise CheckpointError(f"'{path}' is not a complete dbtui checkpoint (no readable {MANIFEST})")
    return manifest


def recorded_profile(manifest: dict[str, Any]) -> Profile | None:
    """The profile a checkpoint was trained with, as its manifest holds it; None where it holds none (written before
    manifests held it) or one this dbtui cannot read (another version's)."""
    from engine.profile import ProfileError, validate_data

    recorded = manifest.get("profile")
    try:
        return validate_data(recorded, dumped=True) if isinstance(recorded, dict) else None
    except ProfileError:
        return None


def _estimate_bytes(trainer: Any, folder: RunFolder) -> int:
    found = complete_checkpoints(folder)
    if found:
        return sum(p.stat().st_size for p in found[-1][1].rglob("*") if p.is_file())
    return unsaved_checkpoint_bytes(trainer.unet_params + trainer.text_params, trainer.profile.optimizer,
                                    stepped_in_fp32=trainer.bf16_weights, models=[trainer.unet, *trainer.text_encoders])


class Checkpointer:
    """Saves and restores a Trainer's whole state into a run folder."""

    def __init__(self, trainer: Any, folder: RunFolder):
        self.trainer = trainer
        self.folder = folder
        self.rotation_due = False  # the last save's rotation waits for a finite loss after it
        self.base_model = base_model_record(trainer.profile.model.pretrained, trainer.components.folder)
        accelerator = trainer.accelerator
        accelerator.register_for_checkpointing(trainer.lr_scheduler, GeneratorState(trainer.generator, accelerator))
        accelerator.register_save_state_pre_hook(self._save_models)
        accelerator.register_load_state_pre_hook(self._load_models)

    def _part(self, model: Any) -> tuple[Any, str]:
        """(the unwrapped model, its part's name): the family's name for its denoiser ("unet", "transformer")
        or for that text encoder."""
        trainer = self.trainer
        family = trainer.components.family
        unwrap = trainer.accelerator.unwrap_model
        inner = unwrap(model)
        if inner is unwrap(trainer.unet):
            return inner, family.denoiser_name
        names = family.text_encoder_names
        return inner, next(name for name, encoder in zip(names, trainer.text_encoders) if unwrap(encoder) is inner)

    # accelerate hooks: weights in diffusers format instead of accelerate's raw files
    def _save_models(self, models: list[Any], weights: list[Any], output_dir: str) -> None:
        from peft.utils import get_peft_model_state_dict

        from engine.training.distributed import whole_model

        trainer = self.trainer
        out = Path(output_dir)
        for model in models:
            name = self._part(model)[1]
            # Every process calls this hook: under FSDP each gives its shard (accelerate has written its own
            # FSDP files for resume already; these are for `dbtui export`); elsewhere the main process has it all.
            inner = whole_model(trainer.accelerator, model)
            if inner is None:
                continue
            if getattr(inner, "peft_config", None):
                from safetensors.torch import save_file

                (out / "lora").mkdir(parents=True, exist_ok=True)
                layers = get_peft_model_state_dict(inner)
                save_file({k: v.contiguous() for k, v in layers.items()}, out / "lora" / f"{name}.safetensors")
            else:
                inner.save_pretrained(out / name, safe_serialization=True)
                write_for_older_readers(out / name)
        weights.clear()

    def _load_models(self, models: list[Any], input_dir: str) -> None:
        from engine.runs.restore_part import restore_part  # it raises this module's errors

        root = Path(input_dir)
        for model in list(models):
            restore_part(*self._part(model), root)
        models.clear()

    def save(self, step: int, *, reason: str = "interval", check_space: bool = True) -> Path | None:
        """Save the state at ``step``; returns the folder, or None when the disk is too full (unless not ``check_space``)."""
        trainer = self.trainer
        accelerator = trainer.accelerator
        started = time.perf_counter()
        target = self.folder.checkpoints / f"step-{step:08d}"
        partial = target.with_name(target.name + PARTIAL)
        if accelerator.is_local_main_process:  # each machine's: one with a disk of its own has its part's leftovers
            # Deleted by hand while the run trains (to free space): the save failed as a bug of dbtui and the run ended.
            self.folder.checkpoints.mkdir(parents=True, exist_ok=True)
            # A save cut short (a second Ctrl-C, a kill) leaves its folder, as large as a checkpoint: no save is
            # under way now, so every one of them is a leftover.
            for leftover in self.folder.checkpoints.glob(f"step-*{PARTIAL}"):
                shutil.rmtree(leftover, ignore_errors=True)
        accelerator.wait_for_everyone()
        # Room besides for what the estimate leaves out (the manifest, random states): a fifth, at least 16 MiB.
        estimate = _estimate_bytes(trainer, self.folder)
        needed = estimate + max(estimate // 5, 16 * 2**20)
        free = shutil.disk_usage(self.folder.checkpoints).free
        # The main process's disk decides for every process, since all must take part in the save or none: another
        # machine's disk holds no checkpoint, and its estimate, with none to go by, is far too large.
        if check_space and not main_process_says(accelerator, free >= needed):
            from rich.filesize import decimal

            kept = complete_checkpoints(self.folder)
            trainer.emit(Warning(
                message=f"not enough disk for a checkpoint at step {step}: {decimal(free)} free, about {decimal(needed)} needed",
                advice=f"free some space (`df -h {self.folder.checkpoints}`); training goes on, "
                       + (f"and the checkpoint of step {kept[-1][0]} is kept" if kept else
                          "but no checkpoint is kept yet: a stop or a crash now loses every step so far"),
            ))
            return None
        save_state_aside(accelerator, partial, needed)
        accelerator.wait_for_everyone()
        files: dict[str, int] = {}
        removed: list[str] = []
        if accelerator.is_main_process:
            usual_permissions(partial)  # safetensors writes weights owner-only: `dbtui export` as another user reads them
            files = {str(file.relative_to(partial)): file.stat().st_size for file in sorted(partial.rglob("*")) if file.is_file()}
            manifest = {
                "step": step,
                "total_steps": trainer.total_steps,
                "instance_images": trainer.instance_images,  # what an epoch length's total was counted of (run_total.py)
                "steps_per_epoch": trainer.steps_per_epoch,  # another epoch count's steps, told before the model loads
                "reason": reason,
                "method": trainer.profile.training.method,
                "profile_name": trainer.profile.name,
                "created": time.time(),
                "num_processes": accelerator.num_processes,
                "optimizer_layout": optimizer_layout(trainer),
                "epoch_leftovers": trainer.epoch_leftovers,  # see epoch_leftovers()
                # Where this run stops the text encoder, as this version's rule has it (resume_changes.py reads it).
                "text_encoder_last_step": text_encoder_last_step(trainer.profile.training.text_encoder_stop_fraction, trainer.total_steps),
                "profile": trainer.profile.model_dump(mode="json"),  # what it was trained with, whatever profile.toml says later
                "base_model": self.base_model,  # as loaded, which an export merging into another model refuses
                "files": files,  # what a resume will read, with sizes: a checkpoint damaged later is told before it is chosen
                "smoothed_loss": trainer.smoothed_loss,  # a resume's smoothed loss goes on from it (None: no finite loss yet)
            }
            write_manifest(partial / MANIFEST, manifest, trainer.image_record)  # and which images, that a resume tells changes of
            fsync_tree(partial)
            if target.exists():
                shutil.rmtree(target)
            os.replace(partial, target)
            # The older checkpoints go once the next step's loss is finite: weights a huge rate has blown up are saved
            # as any, and the step after them turns NaN; rotated at once, keep_last_n = 1 left no good one. At a stop
            # (no step after it) and at the last step (none comes: they were never deleted) they go now, and on several
            # machines, whose other machines delete theirs at this save. The last step's, saved as the final export failed,
            # deletes none: it holds no optimizer state, which a resume training on from an older one keeps (resume_changes).
            self.rotation_due = reason != "stop" and step < trainer.total_steps and trainer.profile.launch.num_machines == 1
            if not self.rotation_due and reason != "export":
                removed = self._rotate()
            trainer.emit(CheckpointSaved(step=step, path=str(target), seconds=time.perf_counter() - started))
        if trainer.profile.launch.num_machines > 1:
            settle_machine_part(accelerator, partial, target, list(files), removed)
        accelerator.wait_for_everyone()
        return target

    def _rotate(self) -> list[str]:
        from engine.runs.rotation import rotate  # it reads the checkpoints with this module's helpers

        return rotate(self.folder, self.trainer.profile.saving.keep_last_n, self.trainer.emit)

    def rotate_after_good_step(self) -> None:
        """The rotation a save left for later, once a step's loss after it is finite (see save)."""
        if self.rotation_due:
            self.rotation_due = False
            self._rotate()

    def load(self, path: Path) -> int:
        """Restore everything from ``path``; returns the step to continue from."""
        import torch

        manifest = read_manifest(path)
        trainer = self.trainer
        step = step_number(manifest.get("step"))
        if step is None:  # said before the state loads, which takes minutes on a large model
            raise CheckpointError(f"checkpoint {path} is damaged: its {MANIFEST} names no step")
        if manifest.get("method") != trainer.profile.training.method:
            raise CheckpointError(f"checkpoint {path} was made with method '{manifest.get('method')}', this profile uses "
                                  f"'{trainer.profile.training.method}'")
        layout = manifest.get("optimizer_layout", "whole")  # checkpoints made before the layouts were all "whole"
        if layout != optimizer_layout(trainer):
            raise CheckpointError(layout_mismatch(path, layout, trainer, manifest.get("profile")))
        try:
            trainer.accelerator.load_state(str(path))
        except CheckpointError:
            raise
        except (RuntimeError, ValueError, EOFError, KeyError, pickle.UnpicklingError) as error:
            if isinstance(error, torch.OutOfMemoryError):
                raise
            from engine.runs.load_failure import load_failure  # it lists the checkpoints with this module's helpers

            raise load_failure(error, Path(path), self.folder) from None
        trainer.global_step = step
        smoothed = manifest.get("smoothed_loss")  # absent from the checkpoints of before it was recorded: starts over
        trainer.smoothed_loss = float(smoothed) if is_number(smoothed) and math.isfinite(smoothed) else None
        from engine.training.optim import rates_from_schedule  # it imports torch, which the UI's process must not

        rates_from_schedule(trainer.lr_scheduler)
        # A run that died the step after its last save left the ones before it: they go once this step's loss is finite.
        self.rotation_due = trainer.accelerator.is_main_process and trainer.profile.launch.num_machines == 1
        from engine.runs.resume_changes import resume_warnings

        for warning in resume_warnings(manifest, trainer.profile, trainer.accelerator.num_processes, trainer.total_steps,
                                       base_model=self.base_model, folder=self.folder, images=trainer.image_record,
                                       recorded_images=read_image_record(path)):
            trainer.emit(warning)
        stop_fraction = trainer.profile.training.text_encoder_stop_fraction
        if trainer.train_text_encoder and not text_encoder_trains_at(trainer.global_step + 1, stop_fraction, trainer.total_steps):
            trainer.stop_text_encoder()
        return trainer.global_step

