"""The report's pictures: each preview or evaluation grid as an inline JPEG, scaled down, so the page needs no other file."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

from engine.runs.report_chart import escape

IMAGE_CAP = 768  # px: the long side of every embedded picture, so many rounds still make a page a browser opens at once
JPEG_QUALITY = 85
MIN_SHOWN = 384  # px: pictures with a shorter long side are shown enlarged by a whole factor
STEP_FOLDER = re.compile(r"step-(\d+)$")


def step_folders(parent: Path) -> dict[int, Path]:
    if not parent.is_dir():
        return {}
    found = {}
    for path in parent.iterdir():
        match = STEP_FOLDER.match(path.name)
        if match and path.is_dir():
            found[int(match.group(1))] = path
    return found


def grid_of(folder: Path | None) -> Path | None:
    """The round's grid, or its only picture when there is no grid."""
    if folder is None:
        return None
    grid = folder / "grid.png"
    if grid.is_file():
        return grid
    pictures = sorted(folder.glob("*.png"))
    return pictures[0] if pictures else None


def figure(path: Path, caption: str) -> str:
    embedded = image_data_uri(path)
    if embedded is None:
        return f'<p class="note">{escape(str(path))} could not be read, or is too large to show here.</p>'
    uri, (width, height) = embedded
    # Tiny pictures (the demo's 64 px) are shown enlarged with sharp pixels; others at their size.
    zoom = max(1, MIN_SHOWN // max(width, height, 1))
    size = f'width="{width * zoom}" height="{height * zoom}"' + (' class="zoomed"' if zoom > 1 else "")
    return f'<figure><img src="{uri}" {size} alt="{escape(caption)}"><figcaption>{escape(caption)}</figcaption></figure>'


def image_data_uri(path: Path, cap: int = IMAGE_CAP) -> tuple[str, tuple[int, int]] | None:
    """The picture as an inline JPEG no larger than ``cap`` on its long side, and its size; None when unreadable,
    or past Pillow's decompression-bomb limit (a huge evaluation grid: decoding it whole would take gigabytes)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            picture = image.convert("RGB")
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
        return None
    picture.thumbnail((cap, cap), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=JPEG_QUALITY)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii"), picture.size
