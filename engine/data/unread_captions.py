"""Caption files training leaves unread beside the ones it reads: a.caption beside a.txt, written by two captioning
tools, or a.caption alone where .txt is read (kohya's extension, the profile's default left). `dataset check` names
each (caption_other_extension, caption_missing); a run says so once per concept."""

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


def caption_of_another_extension(image: Path, extension: str) -> Path | None:
    """``image``'s caption file of another usual extension where it has none of ``extension`` (a.caption where .txt is
    read), else None."""
    if os.path.lexists(caption_file(image, extension)):
        return None
    return next((other_file for other in USUAL_CAPTION_EXTENSIONS
                 if other != extension.lower() and os.path.lexists(other_file := caption_file(image, other))), None)


def other_extension_fix(extension: str, other: Path) -> str:
    """What to do where the captions are ``other``'s extension while ``extension`` is read."""
    return f"set dataset.caption_extension = \"{other.suffix}\" to train with them, or rename them to {extension}"


def unread_captions_warning(images: list[Path], extension: str, caption_mode: str) -> str:
    """What a run says of ``unread_caption_files``, and of captions only in another extension where the prompt stands in
    for a missing one, where its caption mode reads caption files; "" where there are none."""
    if caption_mode not in CAPTION_FILE_MODES:
        return ""
    said = []
    if found := unread_caption_files(images, extension):
        _, read, unread = found[0]
        said.append(f"{len(found)} image(s) have a second caption file that training does not read (such as "
                    f"{unread.name} beside {read.name}): only the dataset.caption_extension {extension} is read; move "
                    f"what they say into the {extension} files and delete them, or set dataset.caption_extension = "
                    f"\"{unread.suffix}\" to train with them instead (`dbtui dataset check --profile PROFILE` names each)")
    others = [other for image in images if (other := caption_of_another_extension(image, extension))]
    if others and caption_mode != "caption_file":  # where caption files alone are read, the run refuses them first
        said.append(f"{len(others)} image(s) have no {extension} caption file, only one training does not read (such as "
                    f"{others[0].name}): they train with the instance prompt alone; {other_extension_fix(extension, others[0])} "
                    "(`dbtui dataset check --profile PROFILE` names each)")
    return "; ".join(said)
