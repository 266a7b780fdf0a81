"""The trainer's own view of a dataset: what it reads, and sizes the profile allows."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from engine.data.buckets import standard_buckets
from engine.data.images import DataError, list_images, load_rgb


def test_links_out_of_the_folder_are_not_training_images(tmp_path: Path) -> None:
    inside, outside = tmp_path / "images", tmp_path / "elsewhere"
    inside.mkdir(), outside.mkdir()
    Image.new("RGB", (8, 8)).save(inside / "a.png")
    Image.new("RGB", (8, 8)).save(outside / "secret.png")
    (inside / "b.png").symlink_to(inside / "a.png")  # a link within the folder is fine
    (inside / "c.png").symlink_to(outside / "secret.png")
    assert [p.name for p in list_images(inside)] == ["a.png", "b.png"]


def test_a_damaged_image_is_a_data_error_naming_it(tmp_path: Path) -> None:
    broken = tmp_path / "x.png"
    Image.new("RGB", (64, 64), (200, 10, 10)).save(broken)
    broken.write_bytes(broken.read_bytes()[:60])
    with pytest.raises(DataError, match="x.png"):
        load_rgb(broken)


@pytest.mark.parametrize("resolution", [32, 40, 48, 56])
def test_every_allowed_small_resolution_has_a_square_bucket(resolution: int) -> None:
    assert (resolution, resolution) in standard_buckets(resolution)


def test_the_bucket_list_at_512_is_unchanged() -> None:
    buckets = standard_buckets(512)
    assert (512, 512) in buckets and (576, 448) in buckets and (704, 320) in buckets and len(buckets) == 9
