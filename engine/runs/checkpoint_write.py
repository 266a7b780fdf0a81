"""Writing a checkpoint's state into its ``.partial`` folder, with a disk that fills up during it said as such."""

from __future__ import annotations

import errno
import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from engine.data.trained_images import ImageRecord, write_image_record

# What a disk that a write filled still says it has free (a block, a file system's slop): a writer failure with more
# free than this is not the disk's, though the half-written checkpoint or another program took it below the estimate.
NEARLY_NOTHING_FREE = 256 * 2**20


def save_state_aside(accelerator: Any, partial: Path, needed: int) -> None:
    """accelerate's ``save_state`` into ``partial``; a failed save removes it (the machine's main process does) and
    raises, as ENOSPC where the disk that had ``needed`` bytes free before the save has next to none left."""
    try:
        accelerator.save_state(str(partial))
    except Exception as error:
        # torch.save's writer says a full disk without its errno ("unexpected pos 64 vs 0"), so a run that filled
        # the disk during a save failed as "a bug in dbtui".
        said = str(error)
        writer = isinstance(error, RuntimeError) and ("inline_container.cc" in said or "PytorchStreamWriter" in said)
        full = writer and shutil.disk_usage(partial.parent).free < min(needed, NEARLY_NOTHING_FREE)
        if accelerator.is_local_main_process:  # the folder is every process's: another may still be writing into it
            shutil.rmtree(partial, ignore_errors=True)  # its space back, so that the failure can still be recorded
        if full:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(partial)) from error
        raise


def write_manifest(manifest_path: Path, manifest: dict[str, Any], images: ImageRecord | None) -> None:
    """The checkpoint's manifest, after its record of the images trained (``images``) beside it: the manifest is last,
    since a folder with one reads as complete."""
    write_image_record(manifest_path.parent, images)
    manifest_path.write_text(json.dumps(manifest, indent=2), encoding="utf-8")


def fsync_tree(root: Path) -> None:
    """Every file under ``root`` flushed to the disk: a checkpoint renamed complete must be whole after a power cut."""
    for path in sorted(root.rglob("*")):
        if path.is_file():
            with path.open("rb") as file:
                os.fsync(file.fileno())


def unsaved_checkpoint_bytes(params: list[Any], optimizer: Any, *, stepped_in_fp32: bool,
                             models: Iterable[Any] = ()) -> int:
    """A checkpoint's size where none is saved yet to go by: the trained weights ``params`` and the state the profile's
    ``optimizer`` keeps for them, as the memory meter counts it (fp32 where bf16 weights step through fp32 copies).
    Two fp32 moments for any optimizer said a Prodigy checkpoint (four states) 1.7 times too small, so a disk with room
    for that alone filled during the save. ``models``: those ``params`` belong to, whose names say which weights start
    at zero (LoRA's B matrices, of which Prodigy keeps p0 as one value: counted in full, a LoRA run's estimate was
    about a ninth too large, and a checkpoint that fitted a nearly full disk was skipped)."""
    from engine.memory.optimizer_state import ParamShape, starts_at_zero, state_bytes

    zero = {id(p) for model in models for name, p in model.named_parameters() if starts_at_zero(name)}
    weights = sum(p.numel() * p.element_size() for p in params)
    shapes = [ParamShape(tuple(p.shape), 4 if stepped_in_fp32 else p.element_size(), id(p) in zero) for p in params]
    return weights + state_bytes(optimizer.name, shapes, beta1=optimizer.beta1)
