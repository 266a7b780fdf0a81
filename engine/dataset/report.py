"""What the doctor found: per-image findings and a summary of the whole dataset."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from engine.dataset.image_probe import ImageProbe

Severity = Literal["error", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = ("error", "warning", "info")
STEPS_PER_IMAGE = 100  # the guide's rule of thumb: 100 steps per instance image
# diffusers' DreamBooth example pairs 5 instance images with 200 class images (40 each); the
# profile's default asks for at least 100.
CLASS_IMAGES_PER_IMAGE = 40
MIN_CLASS_IMAGES = 100
# Both rules are for a subject's small set (about 3–50 images): per image of a 1,000-image folder they would
# suggest 100,000 steps and 40,000 class images to generate. The suggestions stop growing at this many images.
RULE_MAX_IMAGES = 50
MAX_SUGGESTED_STEPS = STEPS_PER_IMAGE * RULE_MAX_IMAGES
MAX_CLASS_IMAGES = CLASS_IMAGES_PER_IMAGE * RULE_MAX_IMAGES


@dataclass(frozen=True)
class Finding:
    """One problem (or note) about one file, or about the whole folder when ``path`` is it."""

    path: str
    code: str  # stable identifier, e.g. "blurry", "caption_too_long"
    severity: Severity
    message: str  # what is wrong, in plain words
    fix: str = ""  # what to do about it (or what prepare will do)


def named_under(path: str | Path, folder: str | Path) -> str:
    """How a report names a file: by its path under the checked ``folder`` (a name alone could be either of two
    IMG_2001.jpg read with -r), whole where it lies outside it."""
    path, folder = Path(path), Path(folder)
    return str(path.relative_to(folder)) if path.is_relative_to(folder) else str(path)


@dataclass(frozen=True)
class Summary:
    images: int  # image files found
    usable: int  # images without errors
    counts: dict[str, int]  # findings per severity
    buckets: dict[tuple[int, int], int]  # (width, height) bucket → images, under aspect-ratio bucketing
    suggested_steps: int
    class_images_wanted: int
    class_images_present: int | None  # None when no class folder was given
    class_images_generated: int = 0  # in the folder's generated-*/ set that the next run would reuse
    class_images_generated_in: str | None = None  # that set's folder
    class_images_unused: int = 0  # pictures in the class folder that are not used (links out of it, sub-folders)
    class_images_with_errors: int = 0  # of those present, the ones a run cannot read: it refuses to start on them
    copies: int = 0  # usable images that are exact copies of another usable one: not counted in the suggestions
    sub_folder_images: int = 0  # images in sub-folders (read by -r) that a run leaves out: in ``images`` alone

    @property
    def class_images_to_generate(self) -> int:
        return max(0, self.class_images_wanted - (self.class_images_present or 0) - self.class_images_generated)


@dataclass(frozen=True)
class DatasetReport:
    folder: str
    resolution: int
    findings: tuple[Finding, ...]
    summary: Summary
    probes: tuple[ImageProbe, ...] = field(repr=False)
    image_buckets: dict[str, tuple[int, int]] = field(repr=False)

    @property
    def has_errors(self) -> bool:
        return self.summary.counts.get("error", 0) > 0

    def for_path(self, path: str) -> list[Finding]:
        return [f for f in self.findings if f.path == path]

    def codes(self, path: str) -> set[str]:
        return {f.code for f in self.for_path(path)}


def summarise(
    probes: list[ImageProbe],
    findings: list[Finding],
    image_buckets: dict[str, tuple[int, int]],
    class_images_wanted: int | None,
    class_images_present: int | None,
    class_generated: tuple[Path | None, int] = (None, 0),
    class_images_unused: int = 0,
    copy_groups: Sequence[Sequence[str]] = (),
    left_out: frozenset[str] = frozenset(),
    class_images_with_errors: int = 0,
) -> Summary:
    """``copy_groups``: groups of files with the same bytes; each group's usable files beyond one are one picture.
    ``left_out``: the images of sub-folders, which a recursive check reads and a run does not: counted in ``images``
    alone, so that the usable count and the suggestions are the run's."""
    # An image with an error does not train, nor one a run does not read: neither fills a bucket nor counts.
    failed = {f.path for f in findings if f.severity == "error"} | left_out
    usable = sum(1 for p in probes if p.path not in failed)
    copies = sum(max(0, sum(1 for path in group if path not in failed) - 1) for group in copy_groups)
    histogram: dict[tuple[int, int], int] = {}
    for path, bucket in image_buckets.items():
        if path not in failed:
            histogram[bucket] = histogram.get(bucket, 0) + 1
    wanted = class_images_wanted if class_images_wanted is not None else min(
        MAX_CLASS_IMAGES, max(MIN_CLASS_IMAGES, CLASS_IMAGES_PER_IMAGE * (usable - copies)))
    return Summary(
        images=len(probes),
        usable=usable,
        counts={s: sum(1 for f in findings if f.severity == s) for s in SEVERITIES},
        buckets=dict(sorted(histogram.items(), key=lambda item: item[0][0] / item[0][1])),
        suggested_steps=min(MAX_SUGGESTED_STEPS, STEPS_PER_IMAGE * (usable - copies)),
        class_images_wanted=wanted,
        class_images_present=class_images_present,
        class_images_generated=class_generated[1],
        class_images_generated_in=str(class_generated[0]) if class_generated[0] else None,
        class_images_unused=class_images_unused,
        class_images_with_errors=class_images_with_errors,
        copies=copies,
        sub_folder_images=sum(1 for p in probes if p.path in left_out),
    )
