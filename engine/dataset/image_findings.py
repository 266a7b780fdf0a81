"""What is wrong with one image's pixels, as the dataset check says it: its mode, size, crop, frames and sharpness."""

from __future__ import annotations

import os
from pathlib import Path

from engine.data.buckets import Bucket, nearest_bucket
from engine.dataset.image_probe import ImageProbe, problem_text
from engine.dataset.report import Finding
from engine.support.folder_access import read_fix

# Share of the picture a crop (to a square, or to a bucket) may cut before we warn: a 4:5 photo loses 20% to a
# square, 10% at each end; a 3:4 phone portrait 25%, the top eighth often the top of the head.
MAX_CROP_LOSS = 0.2
# The square crop's fix, with the key to set: "turn on bucketing" named no setting to turn on.
BUCKETING_FIX = ("turn on aspect-ratio bucketing: dataset.bucketing = true in the profile (--set dataset.bucketing=true "
                 "on the command line; dbtui dataset check --bucketing judges the images as it trains them), or crop "
                 "it yourself around the subject")
_MODE_NOTES = {
    "P": "uses a colour palette",
    "1": "is 1-bit black and white",
    "LAB": "is in Lab colour",
    "YCbCr": "is in YCbCr colour",
}
# Modes whose conversion to 8-bit RGB changes what the picture looks like, not just how it is stored.
_CMYK_WARNING = ("is CMYK (print colours) without a colour profile: the conversion to RGB can only guess, so colours "
                 "shift (often dull or oversaturated)", "export it as an sRGB RGB image from your image editor")
_CMYK_NOTE = ("is CMYK (print colours) with its colour profile", "it is converted to sRGB through that profile, as "
              "viewers show it")
_DEEP_WARNING = ("stores {bits} bits per channel: prepare keeps only the top 8, so levels and smooth gradients "
                 "change (darker, banded, or clipped if it holds linear/HDR data)",
                 "export it as an 8-bit sRGB image yourself, choosing how tones map")
# 32-bit integers are read by their range (colours.wide_grey_to_8_bits): a shift by 8 bits made 0-255 black.
_INT_WARNING = ("stores 32-bit integer values: prepare scales them to 8 bits by their range (up to 255 as they are, up "
                "to 65535 as 16-bit levels, keeping their top 8 bits, higher ones by the brightest), so fine levels "
                "band, and linear/HDR data looks darker or flat", _DEEP_WARNING[1])
# Floats are scaled, not cut (colours.wide_grey_to_8_bits): 0-1 spread over the 8-bit range, brighter ones by their peak.
_FLOAT_WARNING = ("stores 32-bit floating-point values: prepare scales them to 8 bits (0–1 as black to white, values "
                  "up to 255 as they are, brighter ones by the brightest), so fine levels band, and linear/HDR data "
                  "looks darker or flat", _DEEP_WARNING[1])
PROBE_FIXES = {
    "unreadable": "check the file's permissions or copy it again",
    "truncated": "download or copy it again",
    "not_image": "remove it or replace it with the real picture",
    "too_many_pixels": "resize it below the limit in an image editor if you trust it",
    "broken_link": "restore the file it points to, or remove the link",
    "link_outside": "copy the picture into the folder instead of linking to it",
    "not_a_file": "remove or rename it; only regular image files train",
}

def error_fix(error: str | None, path: Path | str, usual: str | None = None) -> str:
    """What to do about the probe's ``error`` of ``path``: for a file this user may not read, the chmod or the owner to
    ask (copying it again fails: the copy cannot read it either); else ``usual``, or the error's own fix."""
    if error == "unreadable" and os.path.lexists(path) and not os.access(path, os.R_OK):
        return read_fix(path)
    return usual or PROBE_FIXES[error or ""]


def image_findings(
    probe: ImageProbe, *, resolution: int, bucketing: bool, buckets: list[Bucket], blur_threshold: float
) -> list[Finding]:
    """What is wrong with one image's pixels (nothing about captions)."""
    path = probe.path
    if not probe.ok:
        return [Finding(path, probe.error, "error", problem_text(probe.error, probe.reason), error_fix(probe.error, path))]
    found = []
    w, h = probe.width, probe.height
    if probe.orientation != 1:
        found.append(Finding(path, "exif_orientation", "info",
                             f"is stored rotated/mirrored (EXIF orientation {probe.orientation})",
                             "prepare applies the rotation, so it trains upright"))
    if probe.transparent:
        found.append(Finding(path, "transparency", "warning",
                             "has a transparent background: cut-outs often leave white or dark outlines that the model learns",
                             "prepare flattens it on a colour you choose (--flatten-color); a real background is better"))
    if probe.mode == "CMYK":
        found.append(Finding(path, "color_mode", "info", *_CMYK_NOTE) if probe.colour_profile
                     else Finding(path, "color_mode", "warning", *_CMYK_WARNING))
    elif probe.mode == "F":
        found.append(Finding(path, "color_mode", "warning", *_FLOAT_WARNING))
    elif probe.mode == "I":
        found.append(Finding(path, "color_mode", "warning", *_INT_WARNING))
    elif probe.bits > 8:
        found.append(Finding(path, "color_mode", "warning", _DEEP_WARNING[0].format(bits=probe.bits), _DEEP_WARNING[1]))
    elif probe.mode in _MODE_NOTES and not probe.transparent:
        found.append(Finding(path, "color_mode", "info", f"{_MODE_NOTES[probe.mode]}",
                             "prepare converts it to 8-bit RGB"))
    if probe.frames > 1:
        # A multi-page TIFF (a scan, a layered export) holds pages, not an animation's frames.
        what = "has {} pages: only its first page" if probe.format == "TIFF" else "is animated ({} frames): only its first frame"
        found.append(Finding(path, "animated", "warning", f"{what.format(probe.frames)} is used for training",
                             f"export the {'page' if probe.format == 'TIFF' else 'frame'} you want as a still PNG or JPEG"))
    if bucketing:
        bw, bh = nearest_bucket(w, h, buckets)
        scale = max(bw / w, bh / h)
        kept = (bw * bh) / (w * scale * h * scale)
        if scale > 1:
            found.append(_too_small(path, w, h, f"its {bw}×{bh} bucket", scale, f"at least {bw}×{bh} px"))
        if 1 - kept > MAX_CROP_LOSS:
            found.append(_cropped(path, w, h, 1 - kept, f"its {bw}×{bh} bucket", "crop it yourself to keep the subject whole"))
    else:
        short = min(w, h)
        if short < resolution:
            found.append(_too_small(path, w, h, f"the {resolution} px training size", resolution / short,
                                    f"at least {resolution} px on its shorter side"))
        if 1 - short / max(w, h) > MAX_CROP_LOSS:
            found.append(_cropped(path, w, h, 1 - short / max(w, h), "a square", BUCKETING_FIX))
    if probe.sharpness < blur_threshold:
        found.append(Finding(path, "blurry", "warning",
                             f"looks blurry (sharpness {probe.sharpness:.0f}, below {blur_threshold:.0f}): motion blur "
                             "or missed focus teaches the model a soft subject", "replace it with a sharp photo"))
    return found


def _too_small(path: str, w: int, h: int, target: str, scale: float, needed: str) -> Finding:
    # The size to look for, not just "larger": at SDXL's 1024 px many phone crops and web images fall short.
    return Finding(path, "too_small", "warning",
                   f"is {w}×{h} px, smaller than {target}: it will be upscaled ×{scale:.2f} and look soft",
                   f"use a larger original ({needed}) if you have one")


def share(fraction: float) -> str:
    """``fraction`` as a whole percentage, where one rounded to 100% is not all: a 30000×10 strip's square crop cut
    99.97% of it, said as "100%", as if nothing were left."""
    if fraction < 1 and round(fraction * 100) >= 100:
        return "over 99%"
    return f"{fraction:.0%}"


def _cropped(path: str, w: int, h: int, lost: float, target: str, fix: str) -> Finding:
    side = "left and right" if w > h else "top and bottom"
    return Finding(path, "aspect_crop", "warning",
                   f"is {w}×{h} px (aspect {max(w, h) / min(w, h):.2f}:1): cropping to {target} cuts {share(lost)} "
                   f"of it from the {side}", fix)
