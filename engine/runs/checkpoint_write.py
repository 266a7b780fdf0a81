"""Writing a checkpoint's state into its ``.partial`` folder, with a disk that fills up during it said as such."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import Any

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


def fsync_tree(root: Path) -> None:
    """Every file under ``root`` flushed to the disk: a checkpoint renamed complete must be whole after a power cut."""
    for path in sorted(root.rglob("*")):
        if path.is_file():
            with path.open("rb") as file:
                os.fsync(file.fileno())
