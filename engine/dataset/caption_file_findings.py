"""Findings on the caption files of a folder as files: misnamed, without an image, or shared by two images."""

from __future__ import annotations

import os
from pathlib import Path

from engine.data.caption_text import CaptionFileError, caption_words, read_caption
from engine.dataset.caption_renames import rename_advice
from engine.data.unread_captions import unread_caption_files
from engine.dataset.files import caption_owners, caption_path, how_misnamed
from engine.dataset.report import Finding


def misnamed_finding(path: str, expected: Path, near: Path, severity: str, owners: list[Path], extension: str) -> Finding:
    """An image whose caption file is there under a name that differs in case or accents: the trainer does not read it.
    ``owners``: the images whose caption ``expected`` is (y.jpg and y.png both read y.txt)."""
    return Finding(path, "caption_misnamed", severity,
                   f"its caption file must be named {expected.name}: {near.name} is there, but its name differs in "
                   f"{how_misnamed(expected, near)}, and names must match exactly here",
                   rename_advice(expected, near, owners, extension))


def orphan_caption_findings(orphans: list[Path]) -> list[Finding]:
    """A caption file whose image is gone (renamed, deleted, or never copied) trains nothing."""
    return [Finding(str(c), "caption_orphan", "warning", f"caption file {c.name} has no image with the same name",
                    "restore or rename its image, or delete the caption")
            for c in orphans]


def shared_caption_findings(images: list[Path], extension: str) -> list[Finding]:
    """Images of one name but different extensions (a.jpg, a.png) have one caption file, which cannot say both.
    Said only of a caption file that exists: the missing one is said on each image, where the captions are read."""
    found = []
    for caption, owners in caption_owners(images, extension).items():
        if len(owners) > 1 and os.path.lexists(caption):
            names = ", ".join(o.name for o in owners[:-1]) + f" and {owners[-1].name}"
            found.append(Finding(str(caption), "caption_shared", "warning",
                                 f"caption file {caption.name} is the caption of {names}: they share it, so an edit "
                                 "of one is an edit of the other", f"rename one (e.g. {owners[-1].name} to "
                                 f"{owners[-1].stem}_2{owners[-1].suffix}) so each image has a caption of its own"))
    return found


def other_extension_findings(images: list[Path], extension: str) -> list[Finding]:
    """An image with a caption file of the caption extension and one of another usual extension (a.txt and a.caption,
    written by two captioning tools): training reads the first alone, and the other was left out without a word."""
    return [Finding(str(unread), "caption_other_extension", "warning",
                    f"{image.name} has two caption files, {used.name} and {unread.name}: training reads {used.name} "
                    f"alone (the caption extension is {extension})",
                    f"move what {unread.name} says into {used.name} and delete it, or set "
                    f"dataset.caption_extension = \"{unread.suffix}\" to train with it instead")
            for image, used, unread in unread_caption_files(images, extension)]


def captioned_images(images: list[Path], extension: str) -> int:
    """How many of ``images`` have a caption file that says something, read as training reads it: one of blanks or
    line breaks alone trains as no caption, and one that cannot be read is said by the doctor's own finding."""
    def says_something(image: Path) -> bool:
        try:
            return bool(caption_words(read_caption(caption_path(image, extension), image.parent)))
        except CaptionFileError:
            return False
    return sum(says_something(image) for image in images)


def unused_caption_findings(folder: str, images: list[Path], extension: str, caption_mode: str) -> list[Finding]:
    """Caption files that training does not read, under a caption mode that takes no caption file: written for
    this concept, they were silently left out of the run (the wizard's profiles train with the prompt by default)."""
    if "caption_file" in caption_mode:
        return []
    captioned = captioned_images(images, extension)
    if not captioned:
        return []
    instead = "its instance prompt" if caption_mode == "instance_prompt" else "its file name"
    return [Finding(folder, "captions_unused", "warning",
                    f"{captioned} of {len(images)} image(s) have a caption file ({extension}), which training does not "
                    f"read: the caption mode is \"{caption_mode}\", so each image trains with {instead} alone",
                    'to train with them, set caption_mode = "caption_file_then_prompt" (each caption, then the '
                    'instance prompt) or "caption_file"; nothing to do if the prompt alone is meant')]
