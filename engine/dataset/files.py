"""Which files of a folder are training images, and where their captions live."""

from __future__ import annotations

from pathlib import Path

from engine.data.images import IMAGE_SUFFIXES
from engine.dataset.errors import DatasetError

IMAGE_EXTENSIONS = IMAGE_SUFFIXES


def list_images(folder: Path | str, *, recursive: bool = False, exclude: Path | None = None) -> list[Path]:
    """Image files (by extension) in ``folder``, sorted; hidden files and ``exclude`` are skipped."""
    root = Path(folder)
    if not root.is_dir():
        raise DatasetError(f"{root} is not a folder: give the folder that holds your training images")
    pattern = root.rglob("*") if recursive else root.glob("*")
    excluded = exclude.resolve() if exclude else None
    images = []
    for path in pattern:
        relative = path.relative_to(root)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if excluded and (path.resolve() == excluded or excluded in path.resolve().parents):
            continue
        # Not is_file(): a dangling link must be reported as unreadable, not silently skipped.
        if path.suffix.lower() in IMAGE_EXTENSIONS and not path.is_dir():
            images.append(path)
    return sorted(images)


def caption_path(image: Path, extension: str = ".txt") -> Path:
    """The caption file of an image: same name, caption extension (``a.jpg`` → ``a.txt``)."""
    return image.with_suffix(extension if extension.startswith(".") else "." + extension)
