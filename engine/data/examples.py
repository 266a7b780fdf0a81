"""Training examples: every image with its caption, concept and bucket."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.data.buckets import Bucket, nearest_bucket, standard_buckets
from engine.data.captions import caption_for
from engine.data.images import DataError, image_size, list_images


@dataclass(frozen=True)
class Example:
    path: Path
    caption: str
    concept: int
    is_class: bool
    bucket: Bucket
    size: tuple[int, int] | None = None  # (width, height) of the image file, when read


def bucket_list(resolution: int, bucketing: bool, buckets: list[tuple[int, int]] | None, multiple: int) -> list[Bucket]:
    if not bucketing:
        return [(resolution, resolution)]
    if buckets:
        return [tuple(b) for b in buckets]  # type: ignore[misc]
    return standard_buckets(resolution, multiple=multiple)


def build_examples(
    profile, instance_dirs: list[Path], class_images: dict[int, list[Path]], buckets: list[Bucket]
) -> list[Example]:
    """Instance examples of every concept, then class examples, each assigned a bucket."""
    examples: list[Example] = []
    for index, (concept, folder) in enumerate(zip(profile.concepts, instance_dirs)):
        images = list_images(folder)
        if not images:
            raise DataError(f"no images in '{folder}' (concept {index}); add .png/.jpg/.webp files")
        for path in images:
            caption = caption_for(path, concept.caption_mode, concept.instance_prompt, profile.dataset.caption_extension)
            size = image_size(path)
            examples.append(Example(path, caption, index, False, nearest_bucket(*size, buckets), size))
    for index, paths in class_images.items():
        prompt = profile.concepts[index].class_prompt or ""
        for path in paths:
            size = image_size(path)
            examples.append(Example(path, prompt, index, True, nearest_bucket(*size, buckets), size))
    return examples
