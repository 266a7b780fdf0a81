"""Finding and loading training images."""

from __future__ import annotations

import math
import os
from pathlib import Path

from engine.errors import DbtuiError

# Formats Pillow reads without plugins and that people actually train on; the trainer, the
# dataset doctor and the wizard's preview all go by this one list.
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".jfif", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})


class DataError(DbtuiError):
    """The training images cannot be used as they are."""

    advice = ("`dbtui dataset check FOLDER` lists every file it cannot use and why; `dbtui dataset prepare FOLDER OUT` "
              "writes a clean copy to train from")


def named_files(paths: list[Path], shown: int = 3) -> str:
    """The first ``shown`` paths, quoted, and how many more."""
    more = len(paths) - shown
    return ", ".join(f"'{path}'" for path in paths[:shown]) + (f" and {more} more" if more > 0 else "")


def list_images(folder: Path) -> list[Path]:
    """Image files directly in ``folder``, sorted by name. Links that lead out of the folder are
    left out, as the dataset doctor reports them: training reads only what the folder holds."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"image folder '{folder}' does not exist; check concepts.*.instance_dir / class_dir")
    real = Path(os.path.realpath(folder))
    return sorted(
        p for p in folder.iterdir()
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() and Path(os.path.realpath(p)).is_relative_to(real)
    )


def load_rgb(path: Path):
    """The image upright (EXIF applied) in RGB; transparency is flattened on white."""
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as image:
            image = ImageOps.exif_transpose(image)
            if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
                rgba = image.convert("RGBA")
                flat = Image.new("RGB", rgba.size, (255, 255, 255))
                flat.paste(rgba, mask=rgba.getchannel("A"))
                return flat
            return image.convert("RGB")
    except (OSError, ValueError, TypeError, SyntaxError, Image.DecompressionBombError) as error:
        # Pillow raises all of these for damaged files (UnidentifiedImageError is an OSError).
        raise DataError(f"cannot read image '{path}': {error}; run `dbtui dataset check` on its folder") from None


def image_size(path: Path) -> tuple[int, int]:
    """Width and height after EXIF orientation, read from the header only."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            width, height = image.size
            orientation = image.getexif().get(0x0112, 1)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        # A header larger than Pillow's decompression-bomb guard is refused at open, as load_rgb would refuse it.
        raise DataError(f"cannot read image '{path}': {error}") from None
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def cover_size(width: int, height: int, target: tuple[int, int], multiple: int) -> tuple[int, int]:
    """The smallest size keeping the aspect ratio that covers ``target``, in steps of ``multiple``."""
    scale = max(target[0] / width, target[1] / height)
    w = max(target[0], math.ceil(width * scale / multiple) * multiple)
    h = max(target[1], math.ceil(height * scale / multiple) * multiple)
    return w, h
