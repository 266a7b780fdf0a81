"""Write training-ready copies of a dataset to a separate folder; originals are only read.

Each copy has its EXIF rotation applied, is 8-bit RGB (transparency flattened on a chosen
colour), is cropped and resized to the training size (or to its aspect-ratio bucket), and is
saved as PNG next to a copy of its caption. A manifest remembers what each copy was made
from, so re-running only redoes images whose source or settings changed, and the caption it copied,
so that one whose source caption is gone is moved into the caption history and one edited there since is kept
(engine/dataset/prepare_captions.py). A file already in the prepared folder that the manifest does not list is the
user's: it is never overwritten. A new prepared folder records its originals' folder (engine/dataset/prepared_origin.py).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from engine.data.buckets import Bucket, nearest_bucket
from engine.data.colours import to_rgb
from engine.data.decode_budget import decode_workers
from engine.data.images import IMAGE_SUFFIXES, int32_decoding, upright, verify_png, why_no_images, within_reach
from engine.data.pixel_limit import over_pixel_limit, pixel_limit_is_an_error
from engine.dataset.errors import DatasetError
from engine.dataset.files import caption_path, file_problem, scan_folder
from engine.dataset.image_probe import (
    count_frames,
    decode_problem,
    identify_file,
    problem_text,
    refused_folder_said,
)
from engine.dataset.options import bucket_list, checked_caption_extension, checked_resolution, checked_workers
from engine.dataset.pool import run_phase
from engine.dataset.prepare_captions import CAPTION, captions_of_another_extension, copy_captions
from engine.dataset.prepare_captions import write_prepared_file as _write_output
from engine.dataset.prepare_lock import preparing_into
from engine.dataset.prepared_origin import MANIFEST, record_origin, refuse_copies_of_copies, unrecordable
from engine.events import Event
from engine.support.json_file import read_json_object



# How images are decoded (engine/data/colours.to_rgb): raised when that changes what a copy holds, so that copies an
# earlier version made are made again. 2: colour profiles applied; float, LAB and transparent 16-bit images read.
DECODING = 2


@dataclass(frozen=True)
class PrepareSettings:
    resolution: int
    bucketing: bool
    buckets: tuple[Bucket, ...]
    center_crop: bool
    flatten_color: tuple[int, int, int]
    decoding: int  # DECODING when the copies were made


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
    caption_failures: tuple[tuple[str, str], ...] = ()  # (caption file, reason) of captions not copied
    orphan_captions: tuple[str, ...] = ()  # caption files with no image of the same name: not copied
    without_original: tuple[str, ...] = ()  # copies an earlier run made whose original is gone: they would still train
    kept: tuple[tuple[str, str], ...] = ()  # (file, reason) of files dbtui did not make where a copy goes: left alone
    stale_captions: tuple[str, ...] = ()  # captions an earlier run copied whose source caption is gone: moved into
    set_aside_in: str = ""  # ...this folder (hidden: neither training nor the check reads it), at the same relative path
    edited_captions: tuple[str, ...] = ()  # captions the user wrote or edited beside the copies: kept, not replaced
    origin_not_recorded: str = ""  # why the folder was not marked as the originals' prepared folder ("" when it was)
    # (folder, problem, what to do) of sub-folders not read (a link leading out, an unreadable one): not images, as the
    # check counts them
    failed_folders: tuple[tuple[str, str, str], ...] = ()
    # (extension, caption files) of captions beside the originals under another extension, none under the one read
    other_captions: tuple[str, tuple[str, ...]] = ("", ())

    @property
    def has_failures(self) -> bool:
        return bool(self.failed or self.caption_failures or self.kept or self.failed_folders)


def prepare_dataset(
    src: Path | str,
    dst: Path | str,
    *,
    resolution: int,
    bucketing: bool = False,
    buckets: list[Bucket] | None = None,
    size_multiple: int = 64,
    center_crop: bool = True,
    flatten_color: tuple[int, int, int] = (255, 255, 255),
    caption_extension: str = ".txt",
    recursive: bool = False,
    emit: Callable[[Event], None] | None = None,
    workers: int | None = None,
) -> PrepareResult:
    """Prepare every image of ``src`` into ``dst`` (created if needed). See the module docstring."""
    src, dst = Path(src), Path(dst)
    resolution = checked_resolution(resolution)
    workers = checked_workers(workers)
    caption_extension = checked_caption_extension(caption_extension)
    if os.path.realpath(dst) == os.path.realpath(src):
        raise DatasetError(f"the prepared folder must not be the originals' folder ({src}): choose another one")
    refuse_copies_of_copies(src)
    listing = scan_folder(src, recursive=recursive, exclude=(dst,), caption_extension=caption_extension)
    images = listing.images
    if not images and not listing.refused:
        why = why_no_images(src, "move them up into it, or prepare each sub-folder (all of them: `dbtui dataset "
                            "prepare --recursive`)")
        raise DatasetError(f"no images in {src} ({', '.join(sorted(IMAGE_SUFFIXES))}): nothing to prepare, so no "
                           f"folder was made{why}")
    _make_folder(dst)
    with preparing_into(dst):  # what it reads of the folder, and writes there, no other prepare writes meanwhile
        manifest_path = dst / MANIFEST
        manifest = read_json_object(manifest_path)  # damaged: the copies already there are taken for the user's own
        unrecorded = unrecordable(dst, src, manifest)  # an empty folder (made just now) is new
        if not unrecorded:
            record_origin(dst, src)
        settings = PrepareSettings(resolution, bucketing, tuple(map(tuple, bucket_list(resolution, buckets, size_multiple))),
                                   center_crop, tuple(flatten_color), DECODING)
        originals = {os.path.realpath(p) for p in images}
        outputs = output_paths(images, src, dst)
        jobs, up_to_date, kept = [], [], []
        earlier: dict[str, dict | None] = {}  # the manifest's entries before this run, for the copies that fail
        failed = [(str(r.path), problem_text(r.code, r.reason)) for r in listing.refused if not r.folder]
        failed_folders = [(str(r.path), *refused_folder_said(r)) for r in listing.refused if r.folder]
        for image, output in zip(images, outputs):
            if os.path.realpath(output) in originals:
                failed.append((str(image), f"its copy would overwrite the original {output}"))
                continue
            key = str(output.relative_to(dst))
            problem = file_problem(str(image))
            if problem:  # a broken link, or a file that went away since the folder was listed
                failed.append((str(image), problem_text(*problem)))
                continue
            if key not in manifest:
                foreign = _foreign_file(output, caption_path(output, caption_extension))
                if foreign:
                    # Named under src: two sub-folders' x.png were both "x.png" to a prepare -r.
                    kept.append((str(foreign), f"{foreign} exists and is not a copy dbtui made; it is left as it is and "
                                 f"{image.relative_to(src)} (in {src}) was not prepared: prepare into another folder, "
                                 "or move the file away"))
                    continue
            stamp = {**_stamp(image, settings), **_caption_record(manifest.get(key))}
            if output.exists() and manifest.get(key) == stamp:
                up_to_date.append(str(output))
            else:
                jobs.append(PrepareJob(str(image), str(output), settings))
            earlier[key] = manifest.get(key)
            manifest[key] = stamp
        # Claimed before any copy is written, as being made (equal to no stamp, so a re-run makes them again): the copies
        # an interrupted prepare (Ctrl-C, a kill) left are dbtui's, not files of the user's to keep.
        claimed = {**manifest, **{key: {"being_made": True, **_caption_record(manifest[key])}
                                  for key in (str(Path(job.output).relative_to(dst)) for job in jobs)}}
        _write_output(manifest_path, json.dumps(claimed, indent=1, sort_keys=True))
        # Each worker holds a decoded original: sized by the budget the run's decode pass and dataset check share.
        outcomes = run_phase("dataset_prepare", prepare_image, jobs,
                             workers=decode_workers([job.source for job in jobs], workers), emit=emit,
                             description=f"preparing {len(jobs)} images")
        written = []
        for job, reason in zip(jobs, outcomes):
            if reason:
                failed.append((job.source, reason))
                # The earlier entry (never this run's stamp) makes the next run try again, and keeps a copy an earlier
                # run made counted as dbtui's rather than as the user's own file.
                key = str(Path(job.output).relative_to(dst))
                if earlier[key] is None:
                    del manifest[key]
                else:
                    manifest[key] = earlier[key]
            else:
                written.append(job.output)
        without_original = _without_original(manifest, outputs, dst, recursive)
        _write_output(manifest_path, json.dumps(manifest, indent=1, sort_keys=True))
        failed_sources = {s for s, _ in failed}
        recorded = json.dumps(manifest, sort_keys=True)
        copies = [(image, output, manifest[key]) for image, output in zip(images, outputs)  # neither failed nor the user's
                  if str(image) not in failed_sources and (key := str(output.relative_to(dst))) in manifest]
        captions = copy_captions(copies, src, dst, caption_extension)
        if json.dumps(manifest, sort_keys=True) != recorded:
            _write_output(manifest_path, json.dumps(manifest, indent=1, sort_keys=True))
        misnamed = {caption for caption, _ in captions.failures}  # named there with its right name
        orphans = tuple(str(c) for c in listing.orphan_captions if str(c) not in misnamed)
        other, unused = captions_of_another_extension(images, caption_extension)
        return PrepareResult(str(dst), tuple(written), tuple(up_to_date), tuple(failed), captions.copied,
                             tuple(captions.failures), orphans, tuple(without_original), tuple(kept), tuple(captions.stale),
                             str(captions.set_aside_in or ""), tuple(captions.edited), unrecorded, tuple(failed_folders),
                             (other, tuple(map(str, unused))))


def _caption_record(entry: object) -> dict:
    """The manifest entry's record of the caption dbtui copied beside it, to carry into the entry that replaces it."""
    return {CAPTION: entry[CAPTION]} if isinstance(entry, dict) and isinstance(entry.get(CAPTION), str) else {}


def _foreign_file(copy: Path, caption: Path) -> Path | None:
    """The copy's or its caption's path when something is there though the manifest does not list the copy: the
    user's own file (links, even broken ones, included), which must not be overwritten."""
    return next((path for path in (copy, caption) if os.path.lexists(path)), None)


def _without_original(manifest: dict, outputs: list[Path], dst: Path, recursive: bool) -> list[str]:
    """The copies earlier runs made (the manifest's) for originals no longer there. They are reported, never
    deleted: the prepared folder may hold the user's own edits. Entries whose copy is gone leave the manifest.
    Without ``recursive`` the sub-folders' copies (an earlier ``--recursive`` run's) are not this run's to judge:
    their originals were not looked for."""
    current = {str(output.relative_to(dst)) for output in outputs}
    left = []
    for key in sorted(set(manifest) - current):
        if not recursive and Path(key).parent != Path("."):
            continue
        if (dst / key).exists():
            left.append(str(dst / key))
        else:
            del manifest[key]
    return left


def _make_folder(dst: Path) -> None:
    if dst.exists() and not dst.is_dir():
        raise DatasetError(f"the prepared folder {dst} is a file: give a folder (it is created if missing)")
    try:
        dst.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DatasetError(f"cannot create the prepared folder {dst} ({error.strerror or error}): "
                           "choose a folder you can write to") from None


def output_paths(images: list[Path], src: Path, dst: Path) -> list[Path]:
    """The prepared copy of each image: same relative path, ``.png``.

    When a.jpg and a.png both exist, a.png keeps its name and a.jpg becomes a.jpg.png (a.jpg-2.png when an
    a.jpg.png is there too): no two images are ever written to one copy.
    """
    used: set[Path] = set()
    outputs: dict[Path, Path] = {}
    for image in sorted(images, key=lambda p: p.suffix.lower() != ".png"):
        relative = image.relative_to(src)
        output = dst / relative.with_suffix(".png")
        if output in used:
            output = dst / relative.parent / (relative.name + ".png")
        count = 1
        while output in used:
            count += 1
            output = dst / relative.parent / f"{relative.name}-{count}.png"
        used.add(output)
        outputs[image] = output
    return [outputs[image] for image in images]


def _stamp(image: Path, settings: PrepareSettings) -> dict:
    stat = image.stat()
    # A 32-bit integer image's own decoding version: a copy made before its conversion changed is made again, and
    # every other copy's stamp stays as it was (raising DECODING would make every copy of every folder again).
    decoding = int32_decoding(image)
    return {"source": os.path.realpath(image), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
            "settings": json.loads(json.dumps(asdict(settings)))} | ({"int32_decoding": decoding} if decoding else {})


def prepare_image(job: PrepareJob) -> str:
    """Make one prepared copy; returns "" on success or the reason it failed (runs in workers)."""
    problem = file_problem(job.source)
    if problem:
        return problem_text(*problem)
    try:
        picture = _resize(_decode(job.source, job.settings), job.settings)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as error:
        return problem_text("too_many_pixels", over_pixel_limit(error))
    except UnidentifiedImageError:
        return problem_text(*identify_file(job.source))
    except Exception as error:  # noqa: BLE001 - Pillow's decoders raise many types on damaged files
        return problem_text(*decode_problem(error))
    output = Path(job.output)
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".png", dir=output.parent)
        os.fchmod(handle, 0o644)  # as the captions beside it (atomic_write_bytes); mkstemp's own 0600 hides it from other users
        os.close(handle)
        try:
            picture.save(temporary, format="PNG", compress_level=1)  # level 6: ~3.5x slower for ~12% smaller files
            os.replace(temporary, output)
        finally:
            Path(temporary).unlink(missing_ok=True)
    except OSError as error:
        return f"its copy cannot be written to {output.parent} ({error.strerror or error})"
    return ""


def _decode(source: str, settings: PrepareSettings) -> Image.Image:
    """The picture upright, in 8-bit RGB, decoded no larger than needed."""
    with pixel_limit_is_an_error():
        with Image.open(source) as image:
            count_frames(image)  # the same completeness test as the check, so both agree on what is broken
            target = _target_size(image, settings)
            if image.format == "JPEG":
                # Decode at a reduced scale that is still at least the target size.
                rotated = image.getexif().get(ExifTags.Base.Orientation, 1) in (5, 6, 7, 8)
                image.draft("RGB", target[::-1] if rotated else target)
            picture = to_rgb(upright(image), settings.flatten_color)
            fmt = image.format or ""
        verify_png(source, fmt)
        return picture


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


def _resize(image: Image.Image, settings: PrepareSettings) -> Image.Image:
    if settings.bucketing:
        return ImageOps.fit(image, nearest_bucket(*image.size, list(settings.buckets)), Image.Resampling.LANCZOS)
    if settings.center_crop:
        return ImageOps.fit(image, (settings.resolution,) * 2, Image.Resampling.LANCZOS)
    # Random-crop training: keep the whole picture (as far as training reaches), short side at the training size.
    image = within_reach(image, (settings.resolution, settings.resolution))
    scale = settings.resolution / min(image.size)
    size = (max(settings.resolution, round(image.width * scale)), max(settings.resolution, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)
