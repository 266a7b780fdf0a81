"""Read what the doctor needs from one image, cheaply: header, EXIF, a small grey copy.

Runs in worker processes, so it imports only Pillow, numpy, imagehash and the file checks of
``engine.dataset.files``. JPEGs are decoded at reduced size with Pillow's draft mode (the DCT
scaling reads the whole file, so truncation is still noticed, at a fraction of the cost).
"""

from __future__ import annotations

import re
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from engine.data.colours import WIDE_GREY_MODES, usable_profile, wide_grey_to_8_bits
from engine.data.images import orientation_of, verify_png
from engine.data.pixel_limit import megapixels_over, over_pixel_limit
from engine.dataset.files import Refused, file_problem

ANALYSIS_SIDE = 512  # blur and hashes are measured on a copy this long, so thresholds are size-free
CHROMA_SIDE = 64  # colour is measured on a copy about this long: a grey picture is grey at any size
_GREY_MODES = ("1", "L", "LA", "La", *WIDE_GREY_MODES)
_ROTATING_ORIENTATIONS = {5, 6, 7, 8}  # EXIF values that swap width and height


# What each probe error means, in the words that start its message ("x.jpg is truncated …: <reason>").
PROBLEMS = {
    "unreadable": "cannot be read",
    "truncated": "is truncated (the download or copy did not finish)",
    "not_image": "is not an image",
    "too_many_pixels": "is refused by the decompression-bomb guard",
    "broken_link": "is a broken symbolic link",
    "link_outside": "is not used",
    "not_a_file": "is not used",
}


def problem_text(code: str, reason: str) -> str:
    """The message of a probe error, e.g. "is a broken symbolic link: the file it points to does not exist"."""
    return f"{PROBLEMS[code]}: {reason}"


# What to do about a sub-folder a listing refuses, where it carries no fix of its own (the chmod, files.Refused.fix).
FOLDER_FIXES = {
    "link_outside": "copy the folder into the dataset folder instead of linking to it",
    "unreadable": "check the sub-folder's permissions (it must be readable and listable)",
}


def refused_folder_said(refused: Refused) -> tuple[str, str]:
    """A refused sub-folder's problem and what to do, as the check, prepare and the wizard say them: an unreadable one's
    reason says so itself ("cannot be read: this sub-folder cannot be read" said it twice), and its chmod is what to do
    where a permission is the cause."""
    problem = refused.reason if refused.code == "unreadable" else problem_text(refused.code, refused.reason)
    return problem, refused.fix or FOLDER_FIXES[refused.code]


@dataclass(frozen=True)
class ImageProbe:
    """Facts about one image file; ``error`` is set when it cannot be used at all."""

    path: str
    # "unreadable", "truncated", "not_image", "too_many_pixels", "broken_link", "link_outside", "not_a_file"
    error: str | None = None
    reason: str = ""
    format: str = ""
    mode: str = ""  # Pillow mode as stored: "RGB", "RGBA", "P", "CMYK", "I;16"…
    width: int = 0  # as displayed, EXIF orientation applied
    height: int = 0
    orientation: int = 1
    transparent: bool = False  # has pixels that are not fully opaque
    sharpness: float = 0.0  # variance of the Laplacian of the grey analysis copy
    phash: int = 0  # 64-bit perceptual hash of the grey analysis copy
    frames: int = 1  # more than one: animated, and only the first frame trains
    bits: int = 8  # bits per channel as stored (16 for 16-bit PNG/TIFF, even when Pillow reads it as RGB)
    colour_profile: bool = False  # carries an embedded colour profile of its own colour space, applied when read
    chroma: float = 0.0  # mean of max(R, G, B) − min(R, G, B), 0–255, of a small copy: near 0 for a grey picture

    @property
    def ok(self) -> bool:
        return self.error is None


def probe_image(path: str | Path, max_pixels: int = Image.MAX_IMAGE_PIXELS) -> ImageProbe:
    """Probe one file; never raises for a bad image, returns it with ``error`` and ``reason``."""
    path = str(path)
    problem = file_problem(path)
    if problem:
        return ImageProbe(path, *problem)
    try:
        with warnings.catch_warnings():
            # We apply our own pixel limit and report it as a finding, not a warning.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            # Pillow warns about damaged metadata on stderr; the finding (if any) is ours to give.
            warnings.filterwarnings("ignore", category=UserWarning, module="PIL")
            return _probe(path, max_pixels)
    except Image.DecompressionBombError as error:
        return ImageProbe(path, "too_many_pixels", over_pixel_limit(error, max_pixels))
    except UnidentifiedImageError:
        return ImageProbe(path, *identify_file(path))
    except Exception as error:  # noqa: BLE001 - Pillow's decoders raise many types on damaged files
        # (OSError, SyntaxError, TypeError, struct.error…): each is a finding on this one file.
        return ImageProbe(path, *decode_problem(error))


def decode_problem(error: Exception) -> tuple[str, str]:
    """(code, reason) for an exception Pillow raised while reading a file; no byte of the file is quoted."""
    if isinstance(error, OSError) and error.strerror:
        return "unreadable", error.strerror
    message = str(error).splitlines()[0] if str(error) else ""
    if "truncated" in message.lower():
        return "truncated", "the file ends before the picture does"
    # Pillow quotes raw bytes of the file in some messages (b'…'); they are the user's data, not ours to print.
    message = re.sub(r"""b(['"]).*?\1""", "…", message)
    return "unreadable", f"its data is damaged ({type(error).__name__}{': ' + message if message else ''})"


def _probe(path: str, max_pixels: int) -> ImageProbe:
    with Image.open(path) as image:
        width, height = image.size
        fmt, mode = image.format or "", image.mode
        if width * height > max_pixels:
            return ImageProbe(
                path, "too_many_pixels", f"{width}×{height} is {megapixels_over(width * height, max_pixels)}", fmt, mode,
                width, height
            )
        bits = _stored_bits(image)
        colour_profile = usable_profile(image) is not None
        frames = count_frames(image)
        orientation = orientation_of(image)
        if orientation in _ROTATING_ORIENTATIONS:
            width, height = height, width
        if fmt == "JPEG" and mode in ("RGB", "L"):
            # YCbCr, not L: its Y is the grey copy draft("L") decoded, and its chroma is kept for the colour.
            image.draft("YCbCr" if mode == "RGB" else "L", (ANALYSIS_SIDE, ANALYSIS_SIDE))
        image.load()
        transparent = _is_transparent(image)
        grey = _grey(image)
        chroma = _chroma(image)
    verify_png(path, fmt)
    return ImageProbe(path, None, "", fmt, mode, width, height, orientation, transparent, laplacian_variance(grey),
                      _phash(grey), frames, bits, colour_profile, chroma)


def count_frames(image: Image.Image) -> int:
    """Frames in the file (walking them finds damage in later frames too); leaves the image on the first.
    A camera's MPO JPEG (the photo, then small previews or a second eye's view) counts as one picture."""
    frames = 1 if image.format == "MPO" else int(getattr(image, "n_frames", 1) or 1)
    image.seek(0)
    return frames


def _stored_bits(image: Image.Image) -> int:
    """16 when the file stores 16 bits per channel (read before load(), which clears the tile)."""
    if image.mode.startswith("I;16"):
        return 16
    raw = image.tile[0][3] if image.tile else None  # (codec, extents, offset, args): args hold the raw mode
    raw = raw[0] if isinstance(raw, tuple) and raw else raw
    return 16 if isinstance(raw, str) and ";16" in raw else 8


def laplacian_variance(grey: Image.Image) -> float:
    """Variance of the 4-neighbour Laplacian: low when edges are soft (blur, defocus)."""
    a = np.asarray(grey, dtype=np.int16)  # exact for 8-bit input (|value| ≤ 1020), 5× faster than floats
    if a.shape[0] < 3 or a.shape[1] < 3:
        return 0.0
    lap = a[1:-1, :-2] + a[1:-1, 2:] + a[:-2, 1:-1] + a[2:, 1:-1] - 4 * a[1:-1, 1:-1]
    return float(lap.var(dtype=np.float64))


def _grey(image: Image.Image) -> Image.Image:
    if image.mode in WIDE_GREY_MODES:
        grey = wide_grey_to_8_bits(image)  # convert("L") would clip them to white or black
    elif image.mode == "LAB":
        grey = image.convert("RGB").convert("L")  # Pillow converts LAB to RGB only
    else:
        grey = image.convert("L")
    grey.thumbnail((ANALYSIS_SIDE, ANALYSIS_SIDE), Image.Resampling.BILINEAR)
    return grey


def _chroma(image: Image.Image) -> float:
    """How colourful ``image`` is (see ``ImageProbe.chroma``), measured on a copy reduced to about ``CHROMA_SIDE``."""
    if image.mode in _GREY_MODES:
        return 0.0
    factor = max(1, min(image.size) // CHROMA_SIDE)
    small = image.reduce(factor) if image.mode in ("RGB", "RGBA", "YCbCr", "CMYK") else image
    rgb = np.asarray(small.convert("RGB"), dtype=np.int16)
    return float((rgb.max(axis=2) - rgb.min(axis=2)).mean())


def _is_transparent(image: Image.Image) -> bool:
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        alpha = image.convert("RGBA").getchannel("A") if image.mode not in ("RGBA", "LA") else image.getchannel("A")
        return alpha.getextrema()[0] < 255
    return False


def _phash(grey: Image.Image) -> int:
    import imagehash

    # pHash looks at a 32×32 copy; a cheap box reduction first saves its slow 512→32 antialiased resize.
    factor = max(1, min(grey.size) // 64)
    bits = imagehash.phash(grey.reduce(factor)).hash.flatten()
    return int("".join("1" if b else "0" for b in bits), 2)


_IMAGE_SIGNATURES = (  # (offset, magic bytes, format) of pictures Pillow reads when they are whole
    (0, b"\x89PNG\r\n\x1a\n", "PNG"),
    (0, b"\xff\xd8\xff", "JPEG"),
    (0, b"GIF8", "GIF"),
    (8, b"WEBP", "WebP"),
    (0, b"II*\x00", "TIFF"),
    (0, b"MM\x00*", "TIFF"),
)
_PHOTO_CONTAINERS = (  # (magic bytes at offset 4, format, the Pillow plugin that reads it: pillow-heif's, Pillow's own)
    (b"ftypheic", "HEIC", "HEIF"),
    (b"ftypheix", "HEIC", "HEIF"),
    (b"ftypmif1", "HEIF", "HEIF"),
    (b"ftypavif", "AVIF", "AVIF"),
)
_SIGNATURES = (  # (offset, magic bytes, what the file is)
    (0, b"%PDF", "a PDF document"),
    (0, b"PK\x03\x04", "a ZIP archive"),
    (0, b"\x1f\x8b", "a gzip archive"),
    (0, b"Rar!", "a RAR archive"),
    (0, b"7z\xbc\xaf", "a 7-Zip archive"),
    (0, b"\x7fELF", "a program, not a picture"),
    (0, b"8BPS", "a Photoshop document (export it as PNG or JPEG)"),
    (4, b"ftyp", "a video (MP4/MOV), not a picture"),
)


def identify_file(path: str) -> tuple[str, str]:
    """(code, reason) for a file Pillow cannot open: a damaged picture, or what the file is instead."""
    try:
        with open(path, "rb") as file:
            head = file.read(512)
    except OSError as error:
        return "unreadable", error.strerror or str(error)
    for offset, magic, fmt in _IMAGE_SIGNATURES:
        if head[offset:offset + len(magic)] == magic:
            kind = _tiff_kind(path) if fmt == "TIFF" else ""
            if kind:
                return "unreadable", (f"it is a TIFF of {kind}, which Pillow does not read: export it as an 8- or "
                                      "16-bit TIFF, a PNG or a JPEG")
            return "unreadable", f"it is a damaged {fmt} file (its header cannot be read)"
    for magic, fmt, plugin in _PHOTO_CONTAINERS:
        if head[4:4 + len(magic)] == magic:
            if plugin in Image.OPEN:
                return "unreadable", f"it is a damaged {fmt} file (its header cannot be read)"
            return "unreadable", (f"it is a {fmt} photo, which this Python cannot read: `pip install pillow-heif` "
                                  "(dbtui's setup installs it), or export it as JPEG")
    return "not_image", f"it is {describe_bytes(head)}"


def _tiff_kind(path: str) -> str:
    """What a TIFF of a kind Pillow does not open holds ("3 samples of 32-bit floating point per pixel": float colour,
    64-bit samples); "" where its header does not read, or it is of a kind Pillow opens: then it is damaged."""
    from PIL import TiffImagePlugin

    try:
        with open(path, "rb") as file, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a damaged header's warning: the finding says it
            tags = TiffImagePlugin.ImageFileDirectory_v2(file.read(8))
            file.seek(tags.next)
            tags.load(file)
        bits, number, samples = tags[258][0], tags.get(339, (1,))[0], tags.get(277, 1)
    except (OSError, ValueError, SyntaxError, KeyError, IndexError, TypeError, struct.error):
        return ""
    if bits < 32 or (bits == 32 and samples == 1):
        return ""  # a kind Pillow reads: it failed on damage
    kind = {1: "unsigned integer", 2: "signed integer", 3: "floating point"}.get(number, "unknown")
    return f"{samples} samples of {bits}-bit {kind} per pixel"


def describe_bytes(head: bytes) -> str:
    """What a file that is not a picture looks like from its first bytes ("an HTML page", "a PDF document"…).

    Never quotes the file: it may be anything, and is not ours to print.
    """
    if not head:
        return "an empty file (0 bytes)"
    for offset, magic, what in _SIGNATURES:
        if head[offset:offset + len(magic)] == magic:
            return what
    start = head.lstrip().lower()
    if start.startswith((b"<!doctype html", b"<html")) or b"<html" in start:
        return "an HTML page (a saved web page, not the picture)"
    if b"<svg" in start:
        return "an SVG drawing, which Pillow cannot read (export it as PNG)"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as error:
        text = head[: error.start].decode("utf-8") if error.start > len(head) - 4 else None
    if text is not None and all(c.isprintable() or c in "\t\r\n" for c in text):
        return "a text file, not a picture"
    return "in a format Pillow does not recognise (not an image it can read)"
