"""A checkpoint's part written on a machine other than 0 that keeps the run folder on its own disk.

accelerate's ``save_state`` has every process write its random-number states (and, under DeepSpeed, its part of the
optimizer state) into the checkpoint's folder on its own machine. On a disk the machines share machine 0 renames that
one folder, every part in it; on a machine with a disk of its own nothing renamed its ``step-N.partial`` folder, so
each checkpoint left one there for good and a resume never read that machine's states. Its first process now names
its part ``step-N`` too and deletes the steps machine 0's rotation deleted: a copy of machine 0's ``step-N`` into it
(README, Resume) then holds the whole checkpoint.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

RANDOM_STATES = "random_states_{}.pkl"  # accelerate's name for a process's random-number states


def settle_machine_part(accelerator: Any, partial: Path, target: Path, main_wrote: list[str], removed: list[str]) -> None:
    """Called by every process of a run on several machines once machine 0 has renamed and rotated its checkpoint.
    ``main_wrote`` (the files in machine 0's checkpoint) and ``removed`` (the checkpoint folders its rotation deleted)
    are machine 0's main process's, and are taken from it here."""
    from accelerate.utils import broadcast_object_list

    main_wrote, removed = broadcast_object_list([main_wrote, removed])
    # Found there, this machine's part is in machine 0's checkpoint already: it is machine 0, or a disk they share.
    if not accelerator.is_local_main_process or RANDOM_STATES.format(accelerator.process_index) in main_wrote:
        return
    if target.exists():  # this step saved again (a resume that stops at once): this save's part replaces it
        shutil.rmtree(target)
    os.replace(partial, target)
    for name in removed:
        shutil.rmtree(target.parent / name, ignore_errors=True)
