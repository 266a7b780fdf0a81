"""Training examples: every image with its caption, concept and bucket."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from engine.data.buckets import Bucket, nearest_bucket, standard_buckets
from engine.data.captions import caption_for
from engine.data.images import DataError, image_size, list_images, named_files, why_no_images
from engine.data.pixel_limit import pixel_limit_is_an_error
from engine.profile.schema import concept_label
from engine.support.folder_access import owner_if_not_you, read_fix
from engine.support.generated_set import is_generated_set


class UnreadableImagesError(DataError):
    """Image files whose header cannot be read: ``unreadable``, and the training images whose header reads,
    ``readable``, which the decode pass before the model loads still decodes, to name the damaged ones of both kinds
    in one message rather than one kind a try."""

    def __init__(self, unreadable: list[Path], readable: list[Path]):
        super().__init__(unreadable_said(unreadable))
        self.unreadable = unreadable
        self.readable = readable


@dataclass(frozen=True)
class Example:
    path: Path
    caption: str
    concept: int
    is_class: bool
    bucket: Bucket
    size: tuple[int, int] | None = None  # (width, height) of the image file, when read
    file_size: int = -1  # an instance image's bytes, which a checkpoint records (engine/data/trained_images.py)
    file_time: int = -1  # and its modification time in ns, which tells a file rewritten at the same size


def bucket_list(resolution: int, bucketing: bool, buckets: list[tuple[int, int]] | None, multiple: int) -> list[Bucket]:
    if not bucketing:
        return [(resolution, resolution)]
    if buckets:
        return [tuple(b) for b in buckets]  # type: ignore[misc]
    return standard_buckets(resolution, multiple=multiple)


def build_examples(
    profile, instance_dirs: list[Path], class_images: dict[int, list[Path]], buckets: list[Bucket]
) -> list[Example]:
    """Instance examples of every concept, then class examples, each assigned a bucket. Every image whose
    header cannot be read, and every caption that cannot be used, is named in one DataError, not the first alone."""
    examples: list[Example] = []
    unreadable: list[Path] = []
    caption_problems: list[str] = []

    def add(path: Path, caption: str, index: int, is_class: bool) -> None:
        try:
            size = image_size(path)
        except DataError:
            unreadable.append(path)
            return
        examples.append(Example(path, caption, index, is_class, nearest_bucket(*size, buckets), size,
                                *((-1, -1) if is_class else _file_size_and_time(path))))

    for index, (concept, folder) in enumerate(zip(profile.concepts, instance_dirs)):
        images = list_images(folder)
        if not images:
            why = why_no_images(folder)
            raise DataError(f"no images in '{folder}', the instance folder of {concept_label(index)}"
                            f"{why or '; add .png/.jpg/.webp files'}")
        for path in images:
            try:
                caption = caption_for(path, concept.caption_mode, concept.instance_prompt, profile.dataset.caption_extension)
            except DataError as error:
                caption_problems.append(str(error))
                continue
            add(path, caption, index, False)
    for index, paths in class_images.items():
        for path in paths:
            add(path, profile.concepts[index].class_prompt or "", index, True)
    if caption_problems:
        more = f"; and {len(caption_problems) - 3} more" if len(caption_problems) > 3 else ""
        raise DataError(f"{len(caption_problems)} caption(s) cannot be used: " + "; ".join(caption_problems[:3]) + more
                        + ". `dbtui dataset check` lists every one.")
    if unreadable:
        raise UnreadableImagesError(unreadable, [example.path for example in examples])
    return examples


def _file_size_and_time(path: Path) -> tuple[int, int]:
    """``path``'s bytes and modification time (ns), -1 each where they cannot be read (gone since its header was
    read): one stat, which 10,000 images take in well under a second."""
    try:
        info = path.stat()
    except OSError:
        return -1, -1
    return info.st_size, info.st_mtime_ns


def unreadable_said(unreadable: list[Path], *, decoded: bool = False) -> str:
    """What the trainer, ``dbtui validate`` and the launch say of image files whose header cannot be read.
    ``decoded``: the other images were decoded too, so the hint that decoding finds more is left out."""
    # A file the user may not read is no damaged picture: moving it out or preparing a copy (which cannot read it
    # either) were the wrong advice.
    locked = [path for path in unreadable if os.path.lexists(path) and not os.access(path, os.R_OK)]
    too_big = [path for path in unreadable if path not in locked and _over_pixel_limit(path)]
    damaged = [path for path in unreadable if path not in too_big and path not in locked]
    # Known by the set's manifest, not by its folder's name: a folder of the user's own may be named generated-…,
    # and its images would not be made again.
    ours = [path for path in damaged if is_generated_set(path.parent)]
    regenerated = (" Those in a set dbtui generated (the folder whose manifest.json lists them) are dbtui's own class "
                   "images: delete them and the next run makes them again." if ours else "")
    said = (f"{len(damaged)} image file(s) cannot be read as pictures: {named_files(damaged)}. Move them "
            "out of the folder, or train from a clean copy made by `dbtui dataset prepare`"
            + ("." if decoded else " (`dbtui dataset check` also finds images damaged past their header, which the "
               "trainer meets only when it decodes them).") + regenerated if damaged else "")
    if too_big:
        from PIL import Image

        said += (f"{' ' if said else ''}{len(too_big)} image file(s) have more pixels than Pillow's guard against "
                 f"decompression bombs allows ({round(Image.MAX_IMAGE_PIXELS / 1e6)} MP): {named_files(too_big)}. "
                 "Resize them below it in an image editor (`dbtui dataset prepare` leaves them out too).")
    if locked:
        said += (f"{' ' if said else ''}{len(locked)} image file(s) cannot be opened: you have no permission to read "
                 f"them: {named_files(locked)}. {_locked_fix(locked)}")
    return said


def _locked_fix(locked: list[Path]) -> str:
    """The chmod for files this user may not read, or the owner to ask where they are another user's (whose files
    only they, or root, may chmod)."""
    if len(locked) == 1:
        fix = read_fix(locked[0])
        return f"{fix[:1].upper()}{fix[1:]}."
    owners = {path: owner_if_not_you(path) for path in locked}
    theirs = sorted({owner for owner in owners.values() if owner})
    said = [f"those of {', '.join(theirs)} only they can let you read: ask them, or use `sudo chmod o+r FILE`"] if theirs else []
    if None in owners.values():
        said.append(f"give yourself read access{' to yours' if theirs else ''} (`chmod u+r FILE`, or `chmod -R u+rX "
                    "FOLDER` for a whole folder)")
    text = "; ".join(said)
    return f"{text[:1].upper()}{text[1:]}."


def _over_pixel_limit(path: Path) -> bool:
    """Whether ``path`` is a picture the decompression-bomb guard refuses (a 100 MP camera's photo): "cannot be read"
    had its owner look for damage the file does not have, and a prepared copy is not made of it."""
    from PIL import Image

    with pixel_limit_is_an_error():
        try:
            with Image.open(path):
                return False
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            return True
        except (OSError, ValueError, TypeError, SyntaxError, RuntimeError):  # damaged or no picture at all
            return False
