"""Pillow's guard against decompression bombs as dbtui applies it: one limit (``Image.MAX_IMAGE_PIXELS``), an error
from it on, and said in those words wherever a picture is refused by it (the doctor, prepare, the wizard's preview).
Pillow only loads when a picture is read: the wizard's process imports this."""

from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Iterator


@contextlib.contextmanager
def pixel_limit_is_an_error() -> Iterator[None]:
    """Pillow only warns between its pixel limit and twice it; the dataset doctor calls that an error, so training
    does too."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module="PIL")  # damaged metadata: not our message
        yield


def over_pixel_limit(error: Exception, max_pixels: int | None = None) -> str:
    """Pillow's refusal in the doctor's words, against the one limit dbtui applies (``max_pixels``, Pillow's own by
    default): over twice it, Pillow named its hard limit (179 MP), and an image resized below that was refused again
    at 89 MP. Another error is said as it is."""
    from PIL import Image

    found = re.search(r"\((\d+) pixels\)", str(error))
    if found is None:
        return str(error)
    limit = Image.MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
    return megapixels_over(int(found[1]), limit)


def megapixels_over(pixels: int, limit: int) -> str:
    """"108 megapixels, over the 89 MP limit": whole megapixels, or as many decimals as it takes for the two figures to
    differ, since "89 megapixels, over the 89 MP limit" (10940×8180) does not say how far below to resize."""
    decimals = 0
    while decimals < 6 and f"{pixels / 1e6:.{decimals}f}" == f"{limit / 1e6:.{decimals}f}":
        decimals += 1
    return f"{pixels / 1e6:.{decimals}f} megapixels, over the {limit / 1e6:.{decimals}f} MP limit"
