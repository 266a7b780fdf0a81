"""The size the VAE encodes the dataset's largest picture at: the caching pass's (and an uncached step's) encode.

LatentSource encodes each picture whole, not at its bucket's size: its part within reach
(``MAX_SPARE``) resized to cover the bucket with its aspect ratio kept, so that random crops have
room (engine/data/images.py ``encode_size``). A 16:9 photo at 1024 px without bucketing is encoded at
1824x1024, where SDXL's VAE holds 2.24 GB against 1.26 GB at 1024x1024. So the meter reads the
pictures' sizes from their headers, as ``build_examples`` does, with the trainer's bucket choice. Where
the folders cannot be read here (an estimate made on another machine) it assumes camera photos and
says so. No torch here: the wizard keys its estimates on ``dataset_key``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.data.buckets import Bucket, nearest_bucket
from engine.data.images import MAX_SPARE, DataError, encode_size, image_size, list_images
from engine.errors import DbtuiError

# Camera and phone photos, landscape and portrait: what is assumed where the pictures cannot be read.
ASSUMED_PICTURES = ((1920, 1080), (1080, 1920))
PRESET_PICTURES = "a preset's figures stand for any dataset, whose pictures are not read"


@dataclass(frozen=True)
class EncodeSize:
    width: int
    height: int
    note: str | None  # what the estimate should say of it; None where it is the step's own size


def _class_pictures(concept: Any) -> tuple[list[Path], int]:
    """(the user's own class images a run takes, how many it generates: square, at the resolution). Raises what
    ``resolve_dir`` and ``list_images`` raise: a built-in folder the cache cannot hold, a folder that cannot be read."""
    from engine.builtin import resolve_dir

    folder = Path(resolve_dir(concept.class_dir)) if concept.class_dir else None
    own = list_images(folder)[:concept.num_class_images] if folder is not None and folder.is_dir() else []
    return own, concept.num_class_images - len(own)


def _picture_sizes(profile: Any) -> tuple[list[tuple[int, int]], list[str]]:
    """(the sizes of the pictures a run trains on, that can be read here; what of them cannot, in words)."""
    from engine.builtin import resolve_dir

    sizes: list[tuple[int, int]] = []
    empty: list[str] = []
    unread: list[str] = []
    unread_class: list[str] = []
    paths: list[Path] = []
    for concept in profile.concepts:
        try:
            images = list_images(Path(resolve_dir(concept.instance_dir)))
            if not images:
                empty.append(concept.instance_dir)
        except (DbtuiError, OSError):  # a folder on another machine or unreadable; a read-only cache
            images = []
            unread.append(concept.instance_dir)
        paths += images
        if profile.prior.enabled:
            try:
                own, generated = _class_pictures(concept)
            except (DbtuiError, OSError):
                own, generated = [], 0
                unread_class.append(concept.class_dir)
            paths += own
            if generated > 0:
                sizes.append((profile.dataset.resolution, profile.dataset.resolution))
    for path in paths:
        try:
            sizes.append(image_size(path))
        except DataError:
            continue  # the trainer refuses it before caching: it is never encoded
    # One sentence a kind, naming every folder: a profile of many concepts made on another machine repeated itself.
    said = [f"{_listed(empty)} {'holds' if len(set(empty)) == 1 else 'hold'} no pictures" if empty else "",
            f"the pictures of {_listed(unread)} are not read here" if unread else "",
            f"the class images of {_listed(unread_class)} are not read here" if unread_class else ""]
    return sizes, [words for words in said if words]


def _listed(folders: list[str]) -> str:
    """'a', 'b' and 'c': each folder once, as the profile writes it."""
    named = [f"'{folder}'" for folder in dict.fromkeys(folders)]
    return named[0] if len(named) == 1 else f"{', '.join(named[:-1])} and {named[-1]}"


def largest_encode(profile: Any, buckets: list[Bucket], multiple: int, step: tuple[int, int], *,
                   read_pictures: bool = True) -> EncodeSize:
    """The largest size (in pixels) the VAE encodes a picture of ``profile``'s dataset at, in steps of ``multiple``
    (the VAE's scale); ``step`` is the step's (width, height). ``read_pictures``: False to assume camera photos
    whatever the folders hold (the stored preset estimates, which stand for any dataset)."""
    sizes, unread = _picture_sizes(profile) if read_pictures else ([], [PRESET_PICTURES])
    assumed = bool(unread)
    if assumed:
        sizes += ASSUMED_PICTURES
    encodes = [encode_size(w, h, nearest_bucket(w, h, buckets), multiple) for w, h in sizes]
    width, height = max(encodes, key=lambda size: (size[0] * size[1], size)) if encodes else step
    if assumed:
        return EncodeSize(width, height, (
            f"{'; '.join(unread)}: the VAE's encode counts 16:9 photos, encoded whole at "
            f"{width}x{height} for random crops; a wider picture is encoded larger (up to {MAX_SPARE}x its bucket's "
            "length). "
            "Estimate where the images are to count them"))
    if width * height > step[0] * step[1]:
        return EncodeSize(width, height, f"the VAE encodes each picture whole for random crops: the largest here at "
                                         f"{width}x{height}, beyond the {step[0]}x{step[1]} step")
    return EncodeSize(width, height, None)


def _folder_stamp(name: str) -> list[Any]:
    """[the folder, its modification time, how many files it holds, the newest one's time]: a picture added or taken
    away changes the folder's time, one overwritten in place only its own. One stat a file, as a directory listing
    already costs: cheap enough at each edit in the wizard."""
    try:
        folder_time = os.stat(name).st_mtime_ns
    except OSError:
        return [name, None]
    count, newest = 0, 0
    try:
        with os.scandir(name) as entries:
            for entry in entries:
                try:
                    modified = entry.stat().st_mtime_ns  # through links, as the pictures are read
                except OSError:
                    continue
                count, newest = count + 1, max(newest, modified)
    except OSError:
        return [name, folder_time]
    return [name, folder_time, count, newest]


def dataset_key(profile: Any) -> list[Any]:
    """What of the dataset the meter reads, cheaply: each concept's folders and when they and their files last
    changed, so that an estimate is not reused for another dataset."""
    from engine.builtin import is_builtin

    def stamp(name: str | None) -> Any:
        if not name or is_builtin(name):
            return name  # a built-in folder's pictures are fixed
        return _folder_stamp(name)

    return [[stamp(c.instance_dir), stamp(c.class_dir), c.num_class_images] for c in profile.concepts]
