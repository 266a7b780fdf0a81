"""The tests' stand-in for a conversion's writing: a copy of a tiny model, put in place as the converter puts its
folder (engine/convert/_files.py atomic_dir), so that what ``before_publish`` writes (the note) is in it when it appears."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path


def copy_converted(model: Path, out: Path, before_publish: Callable[[Path], None] | None) -> Path:
    tmp = out.with_name(f".{out.name}.copying")
    shutil.copytree(model, tmp)
    if before_publish is not None:
        before_publish(tmp)
    os.replace(tmp, out)  # onto an empty folder too, as the converter's rename
    return out
