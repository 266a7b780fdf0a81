"""Finding and loading training images."""

from __future__ import annotations

import contextlib
import math
import os
import struct
from collections.abc import Callable, Sequence
from pathlib import Path

from engine.data.colours import to_rgb
from engine.data.pixel_limit import over_pixel_limit, pixel_limit_is_an_error
from engine.errors import DbtuiError
from engine.profile.fields import IMAGE_SUFFIXES
from engine.support.generated_set import is_dbtui_class_images
from engine.support.prepared_marks import is_prepared_folder
from engine.support.run_marks import holds_run_files

try:
    # iPhone photos (HEIC) open through Pillow in every process that reads training images, since each imports
    # this module. pillow-heif is a dependency; a Python without it (a bare GPU image) reports them unreadable.
    from pillow_heif import register_heif_opener
except ImportError:
    pass
else:
    register_heif_opener()


class DataError(DbtuiError):
    """The training images cannot be used as they are."""

    advice = ("`dbtui dataset check FOLDER` lists every file it cannot use and why; `dbtui dataset prepare FOLDER OUT` "
              "writes a clean copy to train from")


def named_files(paths: list[Path], shown: int = 3) -> str:
    """The first ``shown`` paths, quoted, and how many more."""
    more = len(paths) - shown
    return ", ".join(f"'{path}'" for path in paths[:shown]) + (f" and {more} more" if more > 0 else "")


def list_images(folder: Path) -> list[Path]:
    """Image files directly in ``folder``, sorted by name, as the dataset doctor lists them: hidden files and links
    out of the folder are left out; a broken or looping link (its error) stays, for the header read to refuse."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"image folder '{folder}' does not exist; check concepts.*.instance_dir / class_dir")
    real = Path(os.path.realpath(folder))
    return sorted(
        p for p in folder.iterdir()
        if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
        and (p.is_file() or (p.is_symlink() and not p.exists()))
        and Path(os.path.realpath(p)).is_relative_to(real)
    )


def _links_out(folder: Path) -> list[Path]:
    real = Path(os.path.realpath(folder))
    return [p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
            and p.is_symlink() and p.exists() and not Path(os.path.realpath(p)).is_relative_to(real)]


def links_out_of(folder: Path) -> str:
    """What to add to "no images in FOLDER" where the folder holds image links that lead out of it, which
    ``list_images`` leaves out: the user sees files there."""
    links = _links_out(folder)
    if not links:
        return ""
    return (f": its {len(links)} image link(s) lead out of the folder, which training does not follow (the dataset "
            "check reads only the folder's own files); copy the images in, or link the whole folder instead")


# What to do about an instance folder's sub-folders, said by the no-images error and the run's warning alike.
_MOVE_UP_OR_CONCEPT = "move them up into it, or make each sub-folder a concept of its own (concepts.N.instance_dir)"


def why_no_images(folder: Path, fix: str = _MOVE_UP_OR_CONCEPT) -> str:
    """What to add to "no images in FOLDER": its links that lead out of it (``links_out_of``), and the images in its
    sub-folders (photos sorted by date), which are not read either; ``fix`` says what to do about those."""
    below = images_in_sub_folders(folder)
    return links_out_of(folder) + (f"{';' if _links_out(folder) else ':'} {_not_read(below)}; {fix}" if below else "")


def _not_read(below: dict[str, int]) -> str:
    """The one wording of ``images_in_sub_folders``' count that the three messages above and below share, so the
    no-images error, the run's warning and the dataset check name the sub-folders alike."""
    return f"its sub-folder(s) {_names(list(below))} hold {sum(below.values())} image(s), which are not read"


def _names(names: list[str]) -> str:
    return ", ".join(f"'{name}'" for name in names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def images_in_sub_folders(folder: Path, skip: tuple[Path, ...] = ()) -> dict[str, int]:
    """How many images (as ``list_images`` finds them) each sub-folder of ``folder`` that holds any has, by name, the
    sub-folders' own sub-folders counted in theirs (a phone's DCIM/Camera/): what a user sees there that training does
    not read, and -r does. Passed over: hidden folders (caption history), dbtui's class images
    (``is_dbtui_class_images``), prepared copies and run folders (previews, which "move them up" would train on),
    ``skip``, one that cannot be read (lost+found), a link to the folder or above it, and links further down (-r does
    not follow them either)."""
    try:
        subs = sorted(Path(folder).iterdir())
    except OSError:
        return {}
    real = Path(os.path.realpath(folder))
    skipped = {real, *real.parents, *(Path(os.path.realpath(place)) for place in skip)}
    below: dict[str, int] = {}
    for sub in subs:
        with contextlib.suppress(OSError):
            if sub.is_dir() and Path(os.path.realpath(sub)) not in skipped:
                below[sub.name] = _images_down(sub, skipped, _LEVELS_COUNTED)
    return {name: count for name, count in below.items() if count}


# How far down images_in_sub_folders counts: a phone's or a photo service's export keeps pictures 1-3 levels down
# (DCIM/Camera/, Takeout/Google Photos/Album/); a whole home folder given by mistake is not walked to its end.
_LEVELS_COUNTED = 4


def _images_down(folder: Path, skipped: set[Path], levels: int) -> int:
    """The images of ``folder`` and of its sub-folders ``levels`` deep, but those images_in_sub_folders passes over."""
    if (folder.name.startswith(".") or is_dbtui_class_images(folder) or is_prepared_folder(folder)
            or holds_run_files(folder) or Path(os.path.realpath(folder)) in skipped):
        return 0
    try:
        count = len(list_images(folder))
        subs = [sub for sub in folder.iterdir() if sub.is_dir() and not sub.is_symlink()] if levels > 1 else []
    except OSError:
        return 0
    return count + sum(_images_down(sub, skipped, levels - 1) for sub in subs)


def unused_instance_images(folder: Path, concept_dirs: tuple[Path, ...] = ()) -> str:
    """What the run says of an instance folder's sub-folders' images, which it does not train (the dataset check warns
    of them too), the concepts' folders (``concept_dirs``) aside; "" where there are none."""
    below = images_in_sub_folders(folder, concept_dirs)
    if not below:
        return ""
    return f"{_not_read(below)}: training reads only the images directly in the folder; {_MOVE_UP_OR_CONCEPT}"


def unused_class_images(folder: Path, concept_dirs: tuple[Path, ...] = ()) -> tuple[int, str]:
    """(how many, why) of the pictures a user sees in a class folder that ``list_images`` leaves out: links that lead
    out of it (``links_out_of``), and images in its sub-folders (a downloaded regularisation set keeps them a level
    down), dbtui's own and ``concept_dirs``, the concepts' instance and class folders (a class folder above the
    instance folder), aside. (0, "") when there are none, or the folder is not there. Only a warning is made of it, so
    a sub-folder that cannot be read (a disk's lost+found) is passed over, never raised."""
    try:
        if not Path(folder).is_dir():
            return 0, ""
        links = len(_links_out(folder))
        why = links_out_of(folder)
    except OSError:
        return 0, ""
    below = images_in_sub_folders(folder, concept_dirs)
    if below:
        why += (f"{';' if why else ':'} {_not_read(below)} (only the images directly in a class folder are); move "
                "them up into it, or give the sub-folder as the class folder")
    return links + sum(below.values()), why


def verify_png(path: str | Path, fmt: str) -> None:
    """Raise when a PNG lacks its end or has a damaged chunk (decoding stops at the last pixel and misses both)."""
    from PIL import Image

    if fmt == "PNG":
        with Image.open(path) as again:
            again.verify()


# What Pillow raises on a damaged file (UnidentifiedImageError is an OSError; its AVIF reader raises RuntimeError).
_DAMAGED = (OSError, ValueError, TypeError, SyntaxError, RuntimeError, struct.error)


# Raised when wide_grey_to_8_bits reads 32-bit integer ("I") images otherwise, so that their prepared copies and cached
# latents (only theirs: every other image keeps its own) are made again. 2: read by their range, not shifted 8 bits.
INT32_DECODING = 2


def int32_decoding(path: Path | str) -> int | None:
    """``INT32_DECODING`` for a 32-bit integer image, from its header; None for any other (or unreadable) one."""
    from PIL import Image

    try:
        with pixel_limit_is_an_error(), Image.open(path) as image:
            return INT32_DECODING if image.mode == "I" else None
    except (*_DAMAGED, Image.DecompressionBombError, Image.DecompressionBombWarning):
        return None  # its decoding refuses it, with the reason


def orientation_of(image) -> int:
    """The EXIF orientation still to apply to ``image`` (1: none). Pillow turns a TIFF upright itself, its size
    too, while its EXIF still says the stored orientation; a damaged tag counts as none, as viewers take it.
    A PNG's EXIF counts where it comes before the pixels (Pillow has it in ``info`` at open, and writes it there):
    Pillow's ``getexif`` decodes the whole picture to look for one after them, 46 ms a 1024² picture where the
    header takes a microsecond, and ``image_size`` runs for every picture of a dataset at each estimate and run.
    Every caller asks before decoding, so the doctor, prepare and training agree on such a file."""
    fmt = image.format or ""
    if fmt == "TIFF":
        return 1
    if fmt == "PNG" and "exif" not in image.info and "Raw profile type exif" not in image.info:
        return 1
    try:
        orientation = int(image.getexif().get(0x0112, 1) or 1)
    except (ValueError, TypeError, OSError, SyntaxError, struct.error):
        return 1
    return orientation if 1 <= orientation <= 8 else 1


def upright(image):
    """``image`` turned as its EXIF orientation says. Written here rather than Pillow's ``exif_transpose``, which
    writes the EXIF back and fails on a phone photo whose metadata holds one damaged field."""
    from PIL import Image

    methods = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
               5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
               8: Image.Transpose.ROTATE_90}
    method = methods.get(orientation_of(image))
    return image.transpose(method) if method is not None else image


def load_rgb(path: Path, most_side: int | None = None):
    """The image upright (EXIF applied) in RGB, as ``dbtui dataset prepare`` writes it (``to_rgb``, white behind
    transparency); a file the doctor calls broken (a PNG without its end, too many pixels) is refused.
    ``most_side``: reduced to fit it (a JPEG decoded at the nearest smaller scale already), for showing."""
    with pixel_limit_is_an_error():
        return decoded_rgb(path, most_side)


def decoded_rgb(path: Path, most_side: int | None = None):
    """``load_rgb`` where the caller has made Pillow's pixel-limit warning an error (a process-wide setting): threads
    that each set it put back one another's filters, and a picture over the limit decoded as a good one."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            fmt = image.format or ""
            if most_side:
                image.draft("RGB", (most_side, most_side))
            picture = to_rgb(upright(image), (255, 255, 255))
        verify_png(path, fmt)
    except (*_DAMAGED, Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise DataError(f"cannot read image '{path}': {over_pixel_limit(error)}; run `dbtui dataset check` on its folder") from None
    if most_side:
        picture.thumbnail((most_side, most_side))
    return picture


def image_size(path: Path) -> tuple[int, int]:
    """Width and height after EXIF orientation, read from the header only."""
    with pixel_limit_is_an_error():
        return _header_size(path)


def _header_size(path: Path) -> tuple[int, int]:
    """``image_size`` where the caller has made Pillow's pixel-limit warning an error (a process-wide setting)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            width, height = image.size
            orientation = orientation_of(image)
    except (*_DAMAGED, Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        # A header larger than Pillow's decompression-bomb guard is refused at open, as load_rgb would refuse it.
        raise DataError(f"cannot read image '{path}': {over_pixel_limit(error)}") from None
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def unreadable_headers(paths: Sequence[Path], progress: Callable[[int, int], None] | None = None) -> list[Path]:
    """The ``paths`` whose header ``image_size`` cannot read, as the trainer finds them before caching; ``progress``
    is told (done, total) after each. Eight at a time: on a network disk each read mostly waits for the disk."""
    from concurrent.futures import ThreadPoolExecutor

    from PIL import Image

    def readable(path: Path) -> bool:
        try:
            _header_size(path)
        except DataError:
            return False
        return True

    Image.init()  # every format's reader, loaded once here rather than raced for by the threads
    bad = []
    # The warnings filter is the process's: set once here, around all the threads.
    with pixel_limit_is_an_error(), ThreadPoolExecutor(max_workers=8) as pool:
        for done, (path, ok) in enumerate(zip(paths, pool.map(readable, paths)), 1):
            if not ok:
                bad.append(path)
            if progress is not None:
                progress(done, len(paths))
    return bad


# A picture is used at most this many times longer than its bucket (in the bucket's proportions): room for
# random crops along it, without a VAE pass (or a prepared copy) over all of a 20000-pixel strip.
MAX_SPARE = 4


def reach_size(width: int, height: int, bucket: tuple[int, int]) -> tuple[int, int]:
    """The part of a ``width`` x ``height`` picture that is used for ``bucket``: at most ``MAX_SPARE`` times longer
    than the bucket's shape."""
    most_width = math.ceil(height * bucket[0] * MAX_SPARE / bucket[1])
    most_height = math.ceil(width * bucket[1] * MAX_SPARE / bucket[0])
    if width > most_width:
        return most_width, height
    if height > most_height:
        return width, most_height
    return width, height


def within_reach(image, bucket: tuple[int, int]):
    """``image`` with its middle kept where it is more than ``MAX_SPARE`` times longer than ``bucket``'s shape."""
    width, height = image.size
    kept = reach_size(width, height, bucket)
    if kept == (width, height):
        return image
    left, top = (width - kept[0]) // 2, (height - kept[1]) // 2
    return image.crop((left, top, left + kept[0], top + kept[1]))


def encode_size(width: int, height: int, bucket: tuple[int, int], multiple: int) -> tuple[int, int]:
    """The size the VAE encodes a ``width`` x ``height`` picture at for ``bucket`` (steps of ``multiple``): its part
    within reach, covering the bucket with its aspect ratio kept, so that random crops have room. The trainer's
    LatentSource and the memory meter both size the encode here."""
    return cover_size(*reach_size(width, height, bucket), bucket, multiple)


def cover_size(width: int, height: int, target: tuple[int, int], multiple: int) -> tuple[int, int]:
    """The smallest size keeping the aspect ratio that covers ``target``, in steps of ``multiple``."""
    scale = max(target[0] / width, target[1] / height)
    w = max(target[0], math.ceil(width * scale / multiple) * multiple)
    h = max(target[1], math.ceil(height * scale / multiple) * multiple)
    return w, h
