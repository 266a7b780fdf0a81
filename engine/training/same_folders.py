"""A concept's image folders on each machine of a run: the same files, wherever each machine keeps them.

Compared as paths, the same images at /workspace/data on one machine and /root/data on another (another mount, another
working directory for a relative folder) refused the run. Compared by what they hold (each image's and caption file's
name and size, as the trainer reads them: directly in the folder, hidden files left out), another data set is still
refused, at another path or the same one. dbtui's generated-… class images are not compared: a machine that lacks them
is told what to copy when the run reaches them (engine.training.distributed.made_by_the_main_process).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from engine.profile.fields import IMAGE_SUFFIXES

FOLDER_KEY = re.compile(r"concepts\[\d+\]\.(instance_dir|class_dir)")
SHOWN = 3  # file names shown per kind of difference


def is_folder_key(key: str) -> bool:
    return FOLDER_KEY.fullmatch(key) is not None


def folder_setting(value: Any, caption_extension: str) -> Any:
    """``["folder", path as written, [[name, size], ...]]`` for a folder on this machine (no files where there is no
    such folder, why not where it cannot be listed); a ``builtin:`` name or None as it is, compared as written."""
    from engine.builtin import is_builtin

    if not isinstance(value, str) or is_builtin(value):
        return value
    return ["folder", value, _files(Path(value), caption_extension.lower())]


def _files(folder: Path, caption_extension: str) -> list[list[Any]] | str:
    if not folder.is_dir():
        return []
    read = {*IMAGE_SUFFIXES, caption_extension}
    # Said, not raised: the machines compare in a collective, which a machine that raised here never joins, so the
    # others waited there for the 3-hour meeting timeout.
    try:
        return sorted([entry.name, entry.stat().st_size] for entry in os.scandir(folder)
                      if not entry.name.startswith(".") and os.path.splitext(entry.name)[1].lower() in read
                      and entry.is_file())
    except OSError as error:
        return f"cannot be listed ({error.strerror or error})"


def is_folder(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 3 and value[0] == "folder"


def same_files(ours: Any, theirs: Any) -> bool:
    """Both folders holding the same files (by name and size), wherever each lies; anything else as written."""
    if is_folder(ours) and is_folder(theirs):
        return ours[2] == theirs[2]
    return ours == theirs


def said_folders(ours: list[Any], theirs: list[Any], machine: int) -> str:
    """``'/root/data' vs '/workspace/data': 'b.png' only on machine 1, ...``: both paths and what their files differ
    in."""
    for files, where in ((ours[2], machine), (theirs[2], 0)):
        if isinstance(files, str):  # one that cannot be listed: the trainer would say so on that machine alone
            return f"{ours[1]!r} vs {theirs[1]!r}: machine {where}'s copy {files}"
    mine, main = dict(ours[2]), dict(theirs[2])
    found = [(sorted(mine.keys() - main.keys()), f"only on machine {machine}"),
             (sorted(main.keys() - mine.keys()), "only on machine 0"),
             (sorted(name for name in mine.keys() & main.keys() if mine[name] != main[name]), "of another size")]
    said = [_named(names) + " " + where for names, where in found if names]
    return f"{ours[1]!r} vs {theirs[1]!r}: " + ", ".join(said)


def _named(names: list[str]) -> str:
    more = len(names) - SHOWN
    return ", ".join(repr(name) for name in names[:SHOWN]) + (f" and {more} more" if more > 0 else "")
