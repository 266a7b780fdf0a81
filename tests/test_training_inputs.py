"""The trainer's own view of a dataset: what it reads, and sizes the profile allows."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from engine.data.buckets import nearest_bucket, standard_buckets
from engine.data.images import DataError, list_images, load_rgb
from engine.model_problems import family_setting_problems

from training_helpers import tiny_profile


def test_links_out_of_the_folder_are_not_training_images(tmp_path: Path) -> None:
    inside, outside = tmp_path / "images", tmp_path / "elsewhere"
    inside.mkdir(), outside.mkdir()
    Image.new("RGB", (8, 8)).save(inside / "a.png")
    Image.new("RGB", (8, 8)).save(outside / "secret.png")
    (inside / "b.png").symlink_to(inside / "a.png")  # a link within the folder is fine
    (inside / "c.png").symlink_to(outside / "secret.png")
    assert [p.name for p in list_images(inside)] == ["a.png", "b.png"]


def test_a_broken_or_looping_link_is_refused_as_the_doctor_refuses_it_not_skipped(tmp_path: Path) -> None:
    """The doctor calls both errors; training left them out without a word and trained on fewer images."""
    from engine.data.images import unreadable_headers

    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    (tmp_path / "gone.jpg").symlink_to(tmp_path / "moved-away.jpg")
    (tmp_path / "x.jpg").symlink_to(tmp_path / "y.jpg")
    (tmp_path / "y.jpg").symlink_to(tmp_path / "x.jpg")
    images = list_images(tmp_path)
    assert [p.name for p in images] == ["a.png", "gone.jpg", "x.jpg", "y.jpg"]
    assert [p.name for p in unreadable_headers(images)] == ["gone.jpg", "x.jpg", "y.jpg"]


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


@pytest.mark.parametrize(("resolution", "multiple"), [(520, 64), (1000, 64), (776, 32), (1000, 16), (1024, 64), (40, 64)])
def test_every_bucket_side_is_on_the_models_step_and_the_square_bucket_is_there(resolution: int, multiple: int) -> None:
    buckets = standard_buckets(resolution, multiple)
    step = min(multiple, resolution)
    side = resolution // step * step
    assert (side, side) in buckets and nearest_bucket(900, 900, buckets) == (side, side)
    assert all(w % step == 0 and h % step == 0 and w * h <= resolution * resolution for w, h in buckets)


@pytest.mark.parametrize(("dataset", "warned"), [
    ({"resolution": 520, "bucketing": True}, True),
    ({"resolution": 512, "bucketing": True}, False),
    ({"resolution": 520, "bucketing": False}, False),  # trains at 520x520 itself
    ({"resolution": 520, "bucketing": True, "buckets": [[520, 520]]}, False),  # the user's own sizes
])
def test_validate_says_when_the_standard_buckets_round_the_resolution(tmp_path: Path, dataset: dict, warned: bool) -> None:
    profile = tiny_profile(tmp_path, model={"pretrained": "someone/my-sd-finetune"}, dataset=dataset)  # SD: a 64 px step
    said = [p.message for p in family_setting_problems(profile).warnings if p.key == "dataset.resolution"]
    assert said == (["520 is not a multiple of 64, this model's size step, so the standard buckets round it: square images "
                     "train at 512x512, the others at about that area. Set 512 or 576 to choose the size yourself"]
                    if warned else [])


def test_training_refuses_what_the_doctor_calls_broken_and_skips_what_it_leaves_out(tmp_path: Path) -> None:
    """A PNG without its end and one over Pillow's pixel limit (where Pillow only warns) are errors for the
    doctor, so training refuses them too; a hidden file is not a training image for either."""
    import io

    from engine.dataset import check_dataset

    Image.new("RGB", (8, 8), (10, 200, 30)).save(tmp_path / "good.png")
    whole = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 10, 30)).save(whole, format="PNG")
    (tmp_path / "no-end.png").write_bytes(whole.getvalue()[:-12])  # the IEND chunk cut off
    Image.new("1", (10000, 9500)).save(tmp_path / "bomb.png")  # 95 MP: over the 89 MP limit, under twice it
    Image.new("RGB", (8, 8)).save(tmp_path / ".hidden.png")
    report = check_dataset(tmp_path, workers=1)
    errors = {Path(f.path).name for f in report.findings if f.severity == "error"}
    assert errors == {"no-end.png", "bomb.png"}
    assert [path.name for path in list_images(tmp_path)] == ["bomb.png", "good.png", "no-end.png"]
    for name in errors:
        with pytest.raises(DataError, match=name):
            load_rgb(tmp_path / name)
    assert load_rgb(tmp_path / "good.png").getpixel((0, 0)) == (10, 200, 30)


@pytest.mark.parametrize(("mode", "name", "value", "expected"), [("I;16", "deep.png", 32768, (128, 128, 128)),
                                                                  ("I", "deep.tif", 32768, (128, 128, 128))])
def test_deep_grey_images_train_as_prepare_writes_them(mode: str, name: str, value: int, expected: tuple,
                                                      tmp_path: Path) -> None:
    """16- and 32-bit grey is scaled to 8 bits, not clipped to white."""
    Image.new(mode, (8, 8), value).save(tmp_path / name)
    assert load_rgb(tmp_path / name).getpixel((3, 3)) == expected


def test_a_transparent_colour_is_flattened_on_white_as_prepare_does(tmp_path: Path) -> None:
    image = Image.new("RGB", (8, 8), (0, 0, 0))
    image.save(tmp_path / "keyed.png", transparency=(0, 0, 0))
    assert load_rgb(tmp_path / "keyed.png").getpixel((0, 0)) == (255, 255, 255)


def test_a_caption_linked_from_outside_the_folder_is_refused_as_the_doctor_refuses_it(tmp_path: Path) -> None:
    from engine.data.captions import caption_for

    folder = tmp_path / "images"
    folder.mkdir()
    (tmp_path / "outside.txt").write_text("a caption from elsewhere\n")
    (folder / "a.txt").symlink_to(tmp_path / "outside.txt")
    (folder / "b.txt").write_text("zwx disc\n")
    with pytest.raises(DataError, match="symbolic link to a file outside the dataset folder"):
        caption_for(folder / "a.png", "caption_file", "photo of zwx")
    assert caption_for(folder / "b.png", "caption_file", "photo of zwx") == "zwx disc"


def test_a_long_strip_is_trained_and_prepared_from_its_middle_not_resized_whole(tmp_path: Path) -> None:
    """A 20000×20 strip at 64 px would be a 64000×64 VAE pass (and prepared file); its middle 4:1 is used."""
    from engine.data.encoders import _pixels
    from engine.data.examples import Example
    from engine.dataset import prepare_dataset

    strip = Image.new("RGB", (20000, 20), (0, 0, 255))
    strip.paste((255, 0, 0), (9990, 0, 10010, 20))  # the middle is red
    strip.save(tmp_path / "strip.png")
    pixels = _pixels(Example(tmp_path / "strip.png", "", 0, False, (64, 64), (20000, 20)), 8, False)
    assert pixels.shape == (3, 64, 256)  # 4 times the square bucket, not 3200 times
    prepared = prepare_dataset(tmp_path, tmp_path / "out", resolution=64, center_crop=False, workers=1)
    with Image.open(prepared.written[0]) as copy:
        assert copy.size == (256, 64) and copy.getpixel((128, 32))[0] > 200
