"""prepare_dataset: processed copies in another folder; the originals stay byte-identical."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
from dataset_fixture import _bomb_png, textured, write_fixture
from PIL import Image

from engine.dataset import DatasetError, check_dataset, prepare_dataset
from engine.dataset.prepare import MANIFEST

BROKEN = {"webpage.jpg", "truncated.jpg", "broken_link.jpg", "bomb.png"}


def _hashes(folder: Path) -> dict[str, str]:
    """Every entry, links included (by their target text), with the hash of its bytes."""
    found = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        if path.is_symlink():
            found[key] = "link:" + os.readlink(path)
        elif path.is_file():
            found[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


@pytest.fixture
def fixture_dir(tmp_path: Path) -> Path:
    return write_fixture(tmp_path / "images")


def test_prepare_writes_copies_and_leaves_every_original_byte_identical(fixture_dir: Path, tmp_path: Path) -> None:
    before = _hashes(fixture_dir)
    out = tmp_path / "prepared"
    result = prepare_dataset(fixture_dir, out, resolution=256, workers=1)
    assert _hashes(fixture_dir) == before
    assert {Path(s).name for s, _ in result.failed} == BROKEN
    usable = sorted(p for p in before if p.endswith((".jpg", ".png", ".webp")) and Path(p).name not in BROKEN)
    assert sorted(Path(p).name for p in result.written) == sorted(str(Path(p).with_suffix(".png")) for p in usable)
    for written in result.written:
        with Image.open(written) as image:
            assert (image.format, image.mode, image.size) == ("PNG", "RGB", (256, 256))
    assert (out / "clean_a.txt").read_bytes() == (fixture_dir / "clean_a.txt").read_bytes()
    assert not (out / "uncaptioned.txt").exists()
    assert result.captions_copied == sum(1 for p in before if p.endswith(".txt") and Path(p).stem + ".png" in
                                         {Path(w).name for w in result.written})
    grey = np.asarray(Image.open(out / "gray16.png"))
    assert 60 < grey.mean() < 200  # 16-bit values scaled to 8 bits, not clipped to white


def test_rerun_skips_up_to_date_copies_and_redoes_changed_ones(fixture_dir: Path, tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "prepared"
    first = prepare_dataset(fixture_dir, out, resolution=128, workers=1)
    second = prepare_dataset(fixture_dir, out, resolution=128, workers=1)
    assert second.written == () and sorted(second.up_to_date) == sorted(first.written)
    assert second.captions_copied == 0
    textured(999).save(fixture_dir / "clean_a.jpg")
    (fixture_dir / "clean_b.txt").write_text("a new caption\n")
    third = prepare_dataset(fixture_dir, out, resolution=128, workers=1)
    assert [Path(p).name for p in third.written] == ["clean_a.png"]
    assert third.captions_copied == 1 and (out / "clean_b.txt").read_text() == "a new caption\n"
    fourth = prepare_dataset(fixture_dir, out, resolution=96, workers=1)  # other settings: everything again
    assert sorted(fourth.written) == sorted(first.written)
    assert (out / MANIFEST).exists()
    # Copies an earlier version made, which decoded images otherwise (no colour profiles, float TIFFs black): made again.
    import engine.dataset.prepare as prepare

    monkeypatch.setattr(prepare, "DECODING", prepare.DECODING + 1)
    fifth = prepare_dataset(fixture_dir, out, resolution=96, workers=1)
    assert sorted(fifth.written) == sorted(first.written)


def test_exif_rotation_flattening_and_crop_modes(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    half = np.zeros((200, 300, 3), dtype=np.uint8)
    half[:, 150:] = 255  # stored: left half black, right half white
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed rotated 90° clockwise: the black half goes to the top
    Image.fromarray(half).save(src / "rotated.jpg", exif=exif.tobytes(), quality=95)
    cutout = Image.new("RGBA", (300, 200), (0, 0, 255, 0))
    cutout.paste((0, 0, 255, 255), (100, 50, 200, 150))
    cutout.save(src / "cutout.png")
    out = prepare_dataset(src, tmp_path / "square", resolution=64, flatten_color=(0, 255, 0), workers=1)
    assert out.failed == ()
    rotated = np.asarray(Image.open(tmp_path / "square" / "rotated.png"), dtype=float)
    assert rotated[:8].mean() < 30 and rotated[-8:].mean() > 225
    flat = Image.open(tmp_path / "square" / "cutout.png")
    assert flat.getpixel((0, 0)) == (0, 255, 0) and flat.getpixel((32, 32)) == (0, 0, 255)
    prepare_dataset(src, tmp_path / "whole", resolution=64, center_crop=False, workers=1)
    assert Image.open(tmp_path / "whole" / "cutout.png").size == (96, 64)
    assert Image.open(tmp_path / "whole" / "rotated.png").size == (64, 96)
    prepare_dataset(src, tmp_path / "buckets", resolution=64, bucketing=True, buckets=[(64, 64), (96, 48), (48, 96)],
                    workers=1)
    assert Image.open(tmp_path / "buckets" / "cutout.png").size == (96, 48)
    assert Image.open(tmp_path / "buckets" / "rotated.png").size == (48, 96)


def test_same_name_other_extension_keeps_both(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    textured(1, (80, 80)).save(src / "a.jpg")
    textured(2, (80, 80)).save(src / "a.png")
    result = prepare_dataset(src, tmp_path / "out", resolution=64, workers=1)
    assert sorted(Path(p).name for p in result.written) == ["a.jpg.png", "a.png"]


def test_prepared_folder_must_differ_from_the_originals(fixture_dir: Path) -> None:
    before = _hashes(fixture_dir)
    with pytest.raises(DatasetError, match="must not be the originals"):
        prepare_dataset(fixture_dir, fixture_dir / ".." / fixture_dir.name, resolution=64)
    assert _hashes(fixture_dir) == before


def test_prepare_inside_the_source_folder_recursive_skips_its_own_output(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    textured(1, (80, 80)).save(src / "sub" / "x.jpg")
    first = prepare_dataset(src, src / "prepared", resolution=64, recursive=True, workers=1)
    again = prepare_dataset(src, src / "prepared", resolution=64, recursive=True, workers=1)
    assert [Path(p).relative_to(src) for p in first.written] == [Path("prepared/sub/x.png")]
    assert again.written == () and len(again.up_to_date) == 1


def test_copies_are_readable_by_others_and_copies_left_without_an_original_are_named(tmp_path: Path) -> None:
    source = tmp_path / "originals"
    source.mkdir()
    for index in range(3):
        textured(index, (64, 64)).save(source / f"{index}.png")
    out = tmp_path / "prepared"
    first = prepare_dataset(source, out, resolution=64, workers=1)
    assert {oct(Path(p).stat().st_mode & 0o777) for p in first.written} == {oct(0o644)}  # as the captions: not mkstemp's 0600
    assert first.without_original == ()
    (source / "2.png").unlink()
    again = prepare_dataset(source, out, resolution=64, workers=1)
    assert again.without_original == (str(out / "2.png"),) and (out / "2.png").exists()  # named, never deleted
    (out / "2.png").unlink()
    assert prepare_dataset(source, out, resolution=64, workers=1).without_original == ()


def test_a_run_without_recursive_does_not_call_the_sub_folders_copies_without_original(tmp_path: Path) -> None:
    source = tmp_path / "originals"
    (source / "sub").mkdir(parents=True)
    textured(0, (64, 64)).save(source / "a.png")
    textured(1, (64, 64)).save(source / "sub" / "b.png")
    out = tmp_path / "prepared"
    prepare_dataset(source, out, resolution=64, recursive=True, workers=1)
    # sub/b.png's original is still there, only not looked for: it was said gone, and said to train
    assert prepare_dataset(source, out, resolution=64, workers=1).without_original == ()
    (source / "sub" / "b.png").unlink()
    again = prepare_dataset(source, out, resolution=64, recursive=True, workers=1)
    assert again.without_original == (str(out / "sub" / "b.png"),)


def test_a_caption_named_but_for_letter_case_or_the_image_extension_is_said_not_silently_dropped(tmp_path: Path) -> None:
    source = tmp_path / "originals"
    source.mkdir()
    for index, name in enumerate(("pic.jpg", "Dog.jpg", "tag.jpg")):
        textured(index, (64, 64)).save(source / name)
    (source / "pic.TXT").write_text("a pic")
    (source / "dog.txt").write_text("a dog")
    (source / "tag.jpg.txt").write_text("a tagger's name")
    result = prepare_dataset(source, tmp_path / "prepared", resolution=64, workers=1)
    reasons = dict(result.caption_failures)
    assert "rename pic.TXT to pic.txt" in reasons[str(source / "pic.TXT")]  # was left out without a word
    assert "rename dog.txt to Dog.txt" in reasons[str(source / "dog.txt")]  # was "no image has its name"
    assert "rename tag.jpg.txt to tag.txt" in reasons[str(source / "tag.jpg.txt")]
    assert result.orphan_captions == () and result.has_failures


def test_an_image_over_the_pixel_limit_is_told_the_limit_it_must_go_below(tmp_path: Path) -> None:
    """Past twice the limit, Pillow's own words named its hard limit (179 MP): resized to 150 MP as told, the image
    was refused again at 89 MP. Below twice it, prepare said "could be decompression bomb DOS attack"."""
    source = tmp_path / "originals"
    source.mkdir()
    _bomb_png(source / "giant.png")  # 900 MP: past Pillow's hard limit
    _bomb_png(source / "large.png", 12_000, 9_000)  # 108 MP: past the limit only
    said = "megapixels, over the 89 MP limit"
    report = check_dataset(source, resolution=64, workers=1)
    assert all(said in f.message for f in report.findings if f.code == "too_many_pixels")
    assert len([f for f in report.findings if f.code == "too_many_pixels"]) == 2
    result = prepare_dataset(source, tmp_path / "prepared", resolution=64, workers=1)
    assert [reason.endswith("900 " + said) or reason.endswith("108 " + said) for _, reason in result.failed] == [True] * 2


def test_names_that_would_share_a_copy_each_get_their_own(tmp_path: Path) -> None:
    from engine.dataset.prepare import output_paths

    names = ["a.jpg", "a.png", "a.jpg.png"]
    outputs = output_paths([tmp_path / name for name in names], tmp_path, tmp_path / "out")
    assert [path.name for path in outputs] == ["a.jpg-2.png", "a.png", "a.jpg.png"]


def test_the_doctor_and_prepare_bucket_images_as_training_will(tmp_path: Path, tiny_sd1: Path, tiny_sdxl: Path,
                                                                tiny_flux: Path) -> None:
    """Both stepped buckets by 64 px, where SDXL trains on 32 px steps and Flux on 16: the doctor reported a bucket the
    image never trained in, and prepare cut copies that training cut again."""
    from PIL import Image

    from engine.data.buckets import nearest_bucket, standard_buckets
    from engine.data.examples import bucket_list
    from engine.dataset import check_concept, prepare_dataset, prepare_settings
    from engine.model_info import size_multiple
    from engine.models.loading import load_components
    from engine.profile import validate_data

    for folder in (tiny_sd1, tiny_sdxl, tiny_flux):
        assert size_multiple(str(folder)) == load_components(folder).size_multiple
    # Not on this machine: the family's real models' step, told by the name.
    assert [size_multiple(s) for s in ("someone/sd15-model", "stabilityai/stable-diffusion-xl-base-1.0",
                                       "black-forest-labs/FLUX.1-dev")] == [64, 32, 16]
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.new("RGB", (300, 210), (120, 60, 30)).save(photos / "wide.png")
    profile = validate_data({"name": "b", "model": {"pretrained": "builtin:tiny-sdxl"},
                             "concepts": [{"instance_dir": str(photos), "instance_prompt": "photo of zwx cup"}],
                             "dataset": {"resolution": 64, "bucketing": True}})
    trained = nearest_bucket(300, 210, bucket_list(64, True, None, load_components(tiny_sdxl).size_multiple))
    assert trained != nearest_bucket(300, 210, standard_buckets(64))  # the 64 px step's bucket is another one
    assert check_concept(profile, 0).image_buckets[str(photos / "wide.png")] == trained
    result = prepare_dataset(photos, tmp_path / "prepared", **prepare_settings(profile))
    with Image.open(result.written[0]) as copy:
        assert copy.size == trained


def test_files_dbtui_did_not_make_are_never_overwritten(tmp_path: Path) -> None:
    """The user's own a.png (or a.txt) where a copy goes was replaced by the copy: now kept, and its image left out."""
    src = tmp_path / "X" / "raw"
    src.mkdir(parents=True)
    out = tmp_path / "X"
    for name in ("a", "b", "c"):
        textured(1, (80, 80)).save(src / f"{name}.jpg")
        (src / f"{name}.txt").write_text(f"{name} from the originals\n")
    textured(2, (100, 100)).save(out / "a.png")
    (out / "b.txt").write_text("my own caption\n")
    (out / "c.txt").symlink_to(tmp_path / "nowhere")
    before = _hashes(out)
    result = prepare_dataset(src, out, resolution=64, workers=1)
    assert {k: v for k, v in _hashes(out).items() if k in before} == before
    assert [Path(f).name for f, _ in result.kept] == ["a.png", "b.txt", "c.txt"] and result.has_failures
    assert "b.txt exists and is not a copy dbtui made" in result.kept[1][1]
    assert result.written == () and result.captions_copied == 0 and not (out / "b.png").exists()
    again = prepare_dataset(src, out, resolution=64, workers=1)  # the same on a re-run: the manifest does not list them
    assert len(again.kept) == 3 and {k: v for k, v in _hashes(out).items() if k in before} == before


def test_copies_an_interrupted_prepare_left_are_made_again_not_kept_as_the_users(tmp_path: Path, monkeypatch) -> None:
    """Killed after its copies but before its manifest, the re-run took every copy for a file of the user's."""
    import engine.dataset.prepare as prepare_module

    src = tmp_path / "src"
    src.mkdir()
    for name in ("a", "b"):
        textured(1, (80, 80)).save(src / f"{name}.png")
        (src / f"{name}.txt").write_text(f"{name}\n")
    out = tmp_path / "out"
    real = prepare_module.run_phase

    def killed(*args, **kwargs):
        real(*args, **kwargs)
        raise KeyboardInterrupt  # the copies are written, nothing after them

    monkeypatch.setattr(prepare_module, "run_phase", killed)
    with pytest.raises(KeyboardInterrupt):
        prepare_dataset(src, out, resolution=64, workers=1)
    assert (out / "a.png").exists() and not (out / "a.txt").exists()
    monkeypatch.setattr(prepare_module, "run_phase", real)
    again = prepare_dataset(src, out, resolution=64, workers=1)
    assert again.kept == () and len(again.written) == 2 and again.captions_copied == 2


def test_a_copy_that_fails_to_be_made_again_stays_dbtuis(tmp_path: Path) -> None:
    """A re-run whose image fails keeps the earlier copy's entry: the run after that redoes it, not keeps it as the user's."""
    src = tmp_path / "src"
    src.mkdir()
    textured(1, (80, 80)).save(src / "a.png")
    out = tmp_path / "out"
    prepare_dataset(src, out, resolution=64, workers=1)
    (src / "a.png").write_bytes(b"not an image")
    assert len(prepare_dataset(src, out, resolution=64, workers=1).failed) == 1
    textured(3, (80, 80)).save(src / "a.png")
    third = prepare_dataset(src, out, resolution=64, workers=1)
    assert third.kept == () and [Path(p).name for p in third.written] == ["a.png"]


def test_a_caption_deleted_from_the_originals_is_set_aside_from_the_copies_unless_edited_there(tmp_path: Path) -> None:
    """The copy kept the caption an earlier run wrote, so training from the prepared folder used a removed caption."""
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    for name in ("a", "b", "c", "d"):
        textured(1, (80, 80)).save(src / f"{name}.png")
    for name in ("a", "b", "c"):
        (src / f"{name}.txt").write_text(f"{name} caption\n")
    assert prepare_dataset(src, out, resolution=64, workers=1).captions_copied == 3
    (out / "b.txt").write_text("b as I edited it in the copies\n")
    (out / "d.txt").write_text("d captioned in the copies\n")
    (src / "a.txt").unlink()
    (src / "b.txt").unlink()
    again = prepare_dataset(src, out, resolution=64, workers=1)
    assert again.stale_captions == (str(out / "a.txt"),) and not (out / "a.txt").exists()
    assert (Path(again.set_aside_in) / "a.txt").read_text() == "a caption\n"
    assert (out / "b.txt").read_text() == "b as I edited it in the copies\n"  # edited since: the user's now
    assert (out / "c.txt").read_text() == "c caption\n"
    assert (out / "d.txt").read_text() == "d captioned in the copies\n"  # dbtui never wrote it
    assert len(again.up_to_date) == 4 and not again.has_failures
    (src / "a.txt").write_text("a again\n")
    third = prepare_dataset(src, out, resolution=64, workers=1)
    assert third.stale_captions == () and third.captions_copied == 1 and (out / "a.txt").read_text() == "a again\n"
    assert (out / "b.txt").exists() and len(third.up_to_date) == 4


def test_captions_whose_originals_are_gone_are_moved_into_the_hidden_history_never_deleted(tmp_path: Path) -> None:
    """The originals replaced by images alone: the prepared folder's captions were deleted, maybe the last copy of
    the user's text. They are moved, keeping their sub-folders, into a folder per run that training and the check skip."""
    from engine.data.images import list_images
    from engine.dataset.captions import HISTORY_DIR
    from engine.dataset.files import scan_folder

    src, out = tmp_path / "src", tmp_path / "out"
    (src / "sub").mkdir(parents=True)
    for image in (src / "a.png", src / "sub" / "b.png"):
        textured(1, (80, 80)).save(image)
        image.with_suffix(".txt").write_text(f"{image.stem}, written by hand\n")
    prepare_dataset(src, out, resolution=64, workers=1, recursive=True)
    for caption in src.rglob("*.txt"):
        caption.unlink()
    first = prepare_dataset(src, out, resolution=64, workers=1, recursive=True)
    aside = Path(first.set_aside_in)
    assert aside.parent == out / HISTORY_DIR and aside.name.startswith("removed-")
    assert sorted(first.stale_captions) == [str(out / "a.txt"), str(out / "sub" / "b.txt")]
    assert (aside / "a.txt").read_text() == "a, written by hand\n"
    assert (aside / "sub" / "b.txt").read_text() == "b, written by hand\n"
    assert all(HISTORY_DIR in str(p) for p in out.rglob("*.txt"))
    assert [p.name for p in list_images(out)] == ["a.png"]  # training reads none of the history
    listing = scan_folder(out, recursive=True, caption_extension=".txt")
    assert sorted(p.name for p in listing.images) == ["a.png", "b.png"] and listing.captions == []
    (src / "a.txt").write_text("a again\n")  # copied, then gone again in the same second: a folder of its own
    prepare_dataset(src, out, resolution=64, workers=1, recursive=True)
    (src / "a.txt").unlink()
    second = prepare_dataset(src, out, resolution=64, workers=1, recursive=True)
    assert second.set_aside_in != first.set_aside_in and (Path(second.set_aside_in) / "a.txt").read_text() == "a again\n"
    assert (aside / "a.txt").read_text() == "a, written by hand\n"
    assert prepare_dataset(src, out, resolution=64, workers=1, recursive=True).set_aside_in == ""


def test_a_copy_of_a_32_bit_integer_image_made_by_its_old_conversion_is_made_again(tmp_path: Path) -> None:
    """A copy of an "I" image prepared before its conversion changed (0-255 levels shifted to black) was called up to
    date and kept; it is made again now, and the copy of an RGB image beside it is not."""
    import json

    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    Image.fromarray((np.indices((64, 64)).sum(0) % 256).astype(np.int32)).save(src / "grey.tif")
    textured(1, (64, 64)).save(src / "colour.png")
    prepare_dataset(src, out, resolution=64, workers=1)
    manifest = json.loads((out / MANIFEST).read_text())
    assert "int32_decoding" not in manifest["colour.png"]  # its stamp, hence its copy, as an earlier version's
    manifest["grey.png"].pop("int32_decoding", None)  # as the earlier version stamped it, with the black copy it made
    (out / MANIFEST).write_text(json.dumps(manifest))
    Image.new("RGB", (64, 64)).save(out / "grey.png")
    again = prepare_dataset(src, out, resolution=64, workers=1)
    assert [Path(p).name for p in again.written] == ["grey.png"]
    assert [Path(p).name for p in again.up_to_date] == ["colour.png"]
    assert np.asarray(Image.open(out / "grey.png")).mean() > 30  # 0-126 levels, as they are: not black


def test_two_images_of_one_name_are_told_a_rename_that_keeps_each_its_own_caption(tmp_path: Path) -> None:
    """y.jpg + y.png + y.jpg.txt + y.png.txt: prepare said "rename it to y.txt" of y.png.txt, but y.jpg and y.png both
    read y.txt, so after that rename both copies trained with y.png's caption and y.jpg's was still left out."""
    source = tmp_path / "originals"
    source.mkdir()
    textured(0, (64, 64)).save(source / "y.jpg")
    textured(1, (64, 64)).save(source / "y.png")
    (source / "y.jpg.txt").write_text("the jpg")
    (source / "y.png.txt").write_text("the png")
    out = tmp_path / "prepared"
    reason = dict(prepare_dataset(source, out, resolution=64, workers=1).caption_failures)[str(source / "y.png.txt")]
    assert "rename y.jpg to y_2.jpg and y.jpg.txt to y_2.txt, then y.png.txt to y.txt" in reason
    (source / "y.jpg").rename(source / "y_2.jpg")  # as advised
    (source / "y.jpg.txt").rename(source / "y_2.txt")
    (source / "y.png.txt").rename(source / "y.txt")
    assert prepare_dataset(source, out, resolution=64, workers=1).caption_failures == ()
    assert (out / "y_2.txt").read_text() == "the jpg" and (out / "y.txt").read_text() == "the png"


def test_three_images_of_one_name_are_each_renamed_apart_but_one(tmp_path: Path) -> None:
    """y.jpg + y.png + y.webp, each with its y.EXT.txt: prepare advised renaming y.jpg apart alone, then y.webp.txt to
    y.txt, after which y.png and y.webp still both read y.txt: both trained with y.webp's caption, y.png's left out."""
    source = tmp_path / "originals"
    source.mkdir()
    for seed, suffix in enumerate(("jpg", "png", "webp")):
        textured(seed, (64, 64)).save(source / f"y.{suffix}")
        (source / f"y.{suffix}.txt").write_text(f"the {suffix}")
    out = tmp_path / "prepared"
    reasons = dict(prepare_dataset(source, out, resolution=64, workers=1).caption_failures)
    reason = " ".join(reasons[str(source / "y.webp.txt")].split())
    assert ("rename y.jpg to y_2.jpg and y.jpg.txt to y_2.txt, y.png to y_3.png and y.png.txt to y_3.txt, then "
            "y.webp.txt to y.txt") in reason
    for old, new in (("y.jpg", "y_2.jpg"), ("y.jpg.txt", "y_2.txt"), ("y.png", "y_3.png"), ("y.png.txt", "y_3.txt"),
                     ("y.webp.txt", "y.txt")):  # as advised
        (source / old).rename(source / new)
    assert prepare_dataset(source, out, resolution=64, workers=1).caption_failures == ()
    assert [(out / f"{name}.txt").read_text() for name in ("y_2", "y_3", "y")] == ["the jpg", "the png", "the webp"]
