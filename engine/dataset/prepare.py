"""Write training-ready copies of a dataset to a separate folder; originals are only read.

Each copy has its EXIF rotation applied, is 8-bit RGB (transparency flattened on a chosen
colour), is cropped and resized to the training size (or to its aspect-ratio bucket), and is
saved as PNG next to a copy of its caption. A manifest remembers what each copy was made
from, so re-running only redoes images whose source or settings changed.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageOps

from engine.data.buckets import Bucket, nearest_bucket, standard_buckets
from engine.dataset.captions import atomic_write_text
from engine.dataset.errors import DatasetError
from engine.dataset.files import caption_path, list_images
from engine.dataset.pool import run_phase
from engine.events import Event

MANIFEST = ".dbtui-prepared.json"


@dataclass(frozen=True)
class PrepareSettings:
    resolution: int
    bucketing: bool
    buckets: tuple[Bucket, ...]
    center_crop: bool
    flatten_color: tuple[int, int, int]


@dataclass(frozen=True)
class PrepareJob:
    source: str
    output: str
    settings: PrepareSettings


@dataclass(frozen=True)
class PrepareResult:
    destination: str
    written: tuple[str, ...]  # outputs made this run
    up_to_date: tuple[str, ...]  # outputs kept from an earlier run
    failed: tuple[tuple[str, str], ...]  # (source, reason) of images that could not be prepared
    captions_copied: int


def prepare_dataset(
    src: Path | str,
    dst: Path | str,
    *,
    resolution: int,
    bucketing: bool = False,
    buckets: list[Bucket] | None = None,
    center_crop: bool = True,
    flatten_color: tuple[int, int, int] = (255, 255, 255),
    caption_extension: str = ".txt",
    recursive: bool = False,
    emit: Callable[[Event], None] | None = None,
    workers: int | None = None,
) -> PrepareResult:
    """Prepare every image of ``src`` into ``dst`` (created if needed). See the module docstring."""
    src, dst = Path(src), Path(dst)
    if dst.resolve() == src.resolve():
        raise DatasetError(f"the prepared folder must not be the originals' folder ({src}): choose another one")
    images = list_images(src, recursive=recursive, exclude=dst)
    dst.mkdir(parents=True, exist_ok=True)
    settings = PrepareSettings(resolution, bucketing, tuple(map(tuple, buckets or standard_buckets(resolution))),
                               center_crop, tuple(flatten_color))
    manifest_path = dst / MANIFEST
    manifest = json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.exists() else {}
    originals = {p.resolve() for p in images}
    outputs = output_paths(images, src, dst)
    jobs, up_to_date, failed = [], [], []
    for image, output in zip(images, outputs):
        if output.resolve() in originals:
            failed.append((str(image), f"its copy would overwrite the original {output}"))
            continue
        key = str(output.relative_to(dst))
        try:
            stamp = _stamp(image, settings)
        except OSError as error:  # e.g. a link whose target has gone
            failed.append((str(image), f"cannot be read: {error.strerror or error}"))
            continue
        if output.exists() and manifest.get(key) == stamp:
            up_to_date.append(str(output))
        else:
            jobs.append(PrepareJob(str(image), str(output), settings))
        manifest[key] = stamp
    outcomes = run_phase("dataset_prepare", prepare_image, jobs, workers=workers, emit=emit,
                         description=f"preparing {len(jobs)} images")
    written = []
    for job, reason in zip(jobs, outcomes):
        if reason:
            failed.append((job.source, reason))
            manifest.pop(str(Path(job.output).relative_to(dst)), None)
        else:
            written.append(job.output)
    atomic_write_text(manifest_path, json.dumps(manifest, indent=1, sort_keys=True))
    copied = 0
    failed_sources = {s for s, _ in failed}
    for image, output in zip(images, outputs):
        if str(image) not in failed_sources:
            copied += _copy_caption(caption_path(image, caption_extension), caption_path(output, caption_extension))
    return PrepareResult(str(dst), tuple(written), tuple(up_to_date), tuple(failed), copied)


def output_paths(images: list[Path], src: Path, dst: Path) -> list[Path]:
    """The prepared copy of each image: same relative path, ``.png``.

    When a.jpg and a.png both exist, a.png keeps its name and a.jpg becomes a.jpg.png.
    """
    used: set[Path] = set()
    outputs: dict[Path, Path] = {}
    for image in sorted(images, key=lambda p: p.suffix.lower() != ".png"):
        relative = image.relative_to(src)
        output = dst / relative.with_suffix(".png")
        if output in used:
            output = dst / relative.parent / (relative.name + ".png")
        used.add(output)
        outputs[image] = output
    return [outputs[image] for image in images]


def _stamp(image: Path, settings: PrepareSettings) -> dict:
    stat = image.stat()
    return {"source": str(image.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
            "settings": json.loads(json.dumps(asdict(settings)))}


def _copy_caption(source: Path, target: Path) -> int:
    if not source.exists():
        return 0
    text = source.read_text(encoding="utf-8")
    if target.exists() and target.read_text(encoding="utf-8") == text:
        return 0
    atomic_write_text(target, text)
    return 1


def prepare_image(job: PrepareJob) -> str:
    """Make one prepared copy; returns "" on success or the reason it failed (runs in workers)."""
    settings = job.settings
    output = Path(job.output)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(job.source) as image:
                target = _target_size(image, settings)
                if image.format == "JPEG":
                    # Decode at a reduced scale that is still at least the target size.
                    rotated = image.getexif().get(ExifTags.Base.Orientation, 1) in (5, 6, 7, 8)
                    image.draft("RGB", target[::-1] if rotated else target)
                picture = to_rgb(ImageOps.exif_transpose(image), settings.flatten_color)
        picture = _resize(picture, settings)
        output.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".png", dir=output.parent)
        os.close(handle)
        try:
            picture.save(temporary, format="PNG", compress_level=1)  # level 6: ~3.5x slower for ~12% smaller files
            os.replace(temporary, output)
        finally:
            Path(temporary).unlink(missing_ok=True)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombWarning, Image.DecompressionBombError) as error:
        return f"{type(error).__name__}: {error}"
    return ""


def _target_size(image: Image.Image, settings: PrepareSettings) -> tuple[int, int]:
    """The smallest decoded size (as stored) that still covers the output."""
    if settings.bucketing:
        w, h = image.size
        if image.getexif().get(ExifTags.Base.Orientation, 1) in (5, 6, 7, 8):
            w, h = h, w
        bw, bh = nearest_bucket(w, h, list(settings.buckets))
        side = max(bw, bh)
        return (side, side)
    return (settings.resolution, settings.resolution)


def to_rgb(image: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    """8-bit RGB; transparency is flattened on ``background``, 16-bit values scaled, not clipped."""
    if image.mode.startswith("I;16") or image.mode == "I":
        return Image.fromarray((np.asarray(image, dtype=np.uint32) >> 8).astype(np.uint8)).convert("RGB")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, background)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return image.convert("RGB")


def _resize(image: Image.Image, settings: PrepareSettings) -> Image.Image:
    if settings.bucketing:
        return ImageOps.fit(image, nearest_bucket(*image.size, list(settings.buckets)), Image.Resampling.LANCZOS)
    if settings.center_crop:
        return ImageOps.fit(image, (settings.resolution,) * 2, Image.Resampling.LANCZOS)
    # Random-crop training: keep the whole picture, short side at the training size.
    scale = settings.resolution / min(image.size)
    size = (max(settings.resolution, round(image.width * scale)), max(settings.resolution, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)
