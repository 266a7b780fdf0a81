"""Caption files training leaves unread beside the ones it reads: a.caption beside a.txt, written by two captioning
tools. `dataset check` names each (caption_other_extension); a run says so once per concept."""

from __future__ import annotations

import os
from pathlib import Path

from engine.data.captions import CAPTION_FILE_MODES, caption_file

USUAL_CAPTION_EXTENSIONS = (".txt", ".caption")  # what captioning tools write


def unread_caption_files(images: list[Path], extension: str) -> list[tuple[Path, Path, Path]]:
    """(image, the caption file read, one of another usual extension left unread) for each image that has both."""
    found = []
    for image in images:
        read = caption_file(image, extension)
        if os.path.lexists(read):
            found += [(image, read, unread) for other in USUAL_CAPTION_EXTENSIONS
                      if other != extension.lower() and os.path.lexists(unread := caption_file(image, other))]
    return found


def unread_captions_warning(images: list[Path], extension: str, caption_mode: str) -> str:
    """What a run says of ``unread_caption_files`` where its caption mode reads caption files; "" where there are none."""
    found = unread_caption_files(images, extension) if caption_mode in CAPTION_FILE_MODES else []
    if not found:
        return ""
    _, read, unread = found[0]
    return (f"{len(found)} image(s) have a second caption file that training does not read (such as {unread.name} "
            f"beside {read.name}): only the dataset.caption_extension {extension} is read; move what they say into the "
            f"{extension} files and delete them, or set dataset.caption_extension = \"{unread.suffix}\" to train with "
            "them instead (`dbtui dataset check --profile PROFILE` names each)")
