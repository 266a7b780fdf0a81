"""The meter counts the VAE's encode at the size the trainer really encodes the largest picture at (engine/memory/pictures.py):
whole, covering its bucket with its aspect ratio kept, up to MAX_SPARE times longer. A 16:9 photo at 1024 px is encoded at
1824x1024, where SDXL's VAE holds 2.24 GB against 1.26 GB at 1024x1024; the meter counted 1024x1024."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.memory import estimate_peak
from engine.memory.inputs import meter_key
from tests.training_helpers import tiny_profile

SCALE = 4  # the tiny model's VAE: three levels, two halvings; encodes are sized in its steps


def _pictures(folder: Path, *sizes: tuple[int, int]) -> str:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for index, size in enumerate(sizes):
        Image.new("RGB", size, (120, 80, 40)).save(folder / f"{index}.png")
    return str(folder)


def _of(tmp_path: Path, folder: str, **sections: Any):
    return tiny_profile(tmp_path, concepts=[{"instance_dir": folder, "instance_prompt": "photo of zwx disc"}], **sections)


def _spy(monkeypatch: pytest.MonkeyPatch, name: str) -> list[Any]:
    """The StepShape each call of meter's ``name`` (measure_caching, measure_step) was given."""
    from engine.memory import meter

    shapes: list[Any] = []
    measure = getattr(meter, name)
    monkeypatch.setattr(meter, name, lambda model, profile, shape, *rest, **kw: shapes.append(shape) or measure(model, profile, shape, *rest, **kw))
    return shapes


def test_the_caching_pass_encodes_the_widest_picture_whole_as_the_trainer_does(tmp_path: Path, monkeypatch) -> None:
    from engine.data.examples import Example
    from engine.data.encoders import _pixels

    folder = _pictures(tmp_path / "wide", (64, 64), (128, 72))
    shapes = _spy(monkeypatch, "measure_caching")
    estimate = estimate_peak(_of(tmp_path, folder))
    assert (estimate.width, estimate.height) == (64, 64)  # the step is the bucket's
    assert shapes[0].encode == (64, 116)  # (height, width): the 16:9 picture covering 64x64
    trainer = _pixels(Example(Path(folder) / "1.png", "", 0, False, (64, 64), (128, 72)), SCALE, flip=False)
    assert tuple(trainer.shape[1:]) == shapes[0].encode
    assert any("the largest here at 116x64" in note for note in estimate.notes)
    square = estimate_peak(_of(tmp_path, _pictures(tmp_path / "square", (64, 64))))
    assert estimate.caching > square.caching
    assert not any("largest here" in note for note in square.notes)


def test_a_picture_far_longer_than_its_bucket_is_counted_within_reach(tmp_path: Path, monkeypatch) -> None:
    shapes = _spy(monkeypatch, "measure_caching")
    estimate_peak(_of(tmp_path, _pictures(tmp_path / "strip", (2000, 100))))
    assert shapes[0].encode == (64, 256)  # MAX_SPARE = 4 times the bucket's length, not the strip's 1280


def test_uncached_steps_encode_the_largest_picture_whole(tmp_path: Path, monkeypatch) -> None:
    from engine.memory import meter

    seen: list[tuple[int, ...]] = []
    measure = meter.measure_step

    def spying(model, *args, **kw):
        vae = model.components.vae
        encode = vae.encode
        vae.encode = lambda pixels, *a, **k: seen.append(tuple(pixels.shape)) or encode(pixels, *a, **k)
        return measure(model, *args, **kw)

    monkeypatch.setattr(meter, "measure_step", spying)
    estimate_peak(_of(tmp_path, _pictures(tmp_path / "wide", (128, 72)), dataset={"resolution": 64, "cache_latents": False}))
    assert seen == [(1, 3, 64, 116)]


def test_pictures_that_cannot_be_read_here_are_assumed_photos_and_the_estimate_says_so(tmp_path: Path, monkeypatch) -> None:
    shapes = _spy(monkeypatch, "measure_caching")
    elsewhere = estimate_peak(_of(tmp_path, str(tmp_path / "on-another-machine")))
    assert shapes[0].encode == (64, 116)  # 1920x1080 covering 64x64
    assert any("are not read here" in note and "16:9 photos" in note and "116x64" in note for note in elsewhere.notes)
    # The stored preset estimates assume them too, whatever folder the preset names.
    assumed = estimate_peak(_of(tmp_path, _pictures(tmp_path / "square", (64, 64))), read_pictures=False)
    assert shapes[1].encode == (64, 116) and assumed.caching == elsewhere.caching


def test_the_meters_key_follows_the_pictures_folders_and_what_they_hold(tmp_path: Path) -> None:
    import os

    first, second = _pictures(tmp_path / "a", (64, 64)), _pictures(tmp_path / "b", (64, 64))
    key = meter_key(_of(tmp_path, first))
    assert key == meter_key(_of(tmp_path, first)) and key != meter_key(_of(tmp_path, second))
    _pictures(tmp_path / "a2", (128, 72))
    os.replace(tmp_path / "a2" / "0.png", tmp_path / "a" / "1.png")  # a wide picture added
    os.utime(first, ns=(10**18, 10**18))  # a folder's time changes at once, whatever the file system's clock step
    assert meter_key(_of(tmp_path, first)) != key


def test_the_meters_key_follows_a_picture_overwritten_in_place(tmp_path: Path) -> None:
    """Writing over a picture leaves its folder's time as it was: the key did not change, and the wizard showed the
    estimate of the picture that was there before."""
    import os

    folder = _pictures(tmp_path / "a", (64, 64))
    os.utime(folder, ns=(10**18, 10**18))
    key = meter_key(_of(tmp_path, folder))
    _pictures(tmp_path / "a", (1024, 64))  # 0.png, written over
    os.utime(Path(folder) / "0.png", ns=(2 * 10**18, 2 * 10**18))  # its time changes, whatever the file system's clock step
    os.utime(folder, ns=(10**18, 10**18))
    assert meter_key(_of(tmp_path, folder)) != key


def _note(profile, **how: Any) -> str:
    from engine.memory.pictures import largest_encode

    return largest_encode(profile, [(64, 64)], SCALE, (64, 64), **how).note or ""


def test_class_images_the_cache_cannot_hold_are_assumed_photos_rather_than_failing_the_estimate(tmp_path: Path, monkeypatch) -> None:
    """A read-only cache (the built-in class folder cannot be built) or an unreadable class folder failed the whole
    estimate."""
    import engine.builtin
    from engine.builtin import BuiltinCacheError

    resolve = engine.builtin.resolve_dir

    def read_only(name: str) -> str:
        if name == "builtin:demo-class":
            raise BuiltinCacheError("the cache folder is read-only")
        return resolve(name)

    monkeypatch.setattr(engine.builtin, "resolve_dir", read_only)
    folder = _pictures(tmp_path / "square", (64, 64))
    profile = tiny_profile(tmp_path, concepts=[{"instance_dir": folder, "instance_prompt": "photo of zwx disc",
                                                "class_dir": "builtin:demo-class", "class_prompt": "photo of a disc",
                                                "num_class_images": 2}], prior={"enabled": True})
    assert "the class images of 'builtin:demo-class' are not read here" in _note(profile)


def test_the_note_says_why_no_picture_was_read(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _note(_of(tmp_path, str(empty))).startswith(f"'{empty}' holds no pictures: the VAE's encode counts 16:9 photos")
    preset = _note(_of(tmp_path, _pictures(tmp_path / "square", (64, 64))), read_pictures=False)
    assert preset.startswith("a preset's figures stand for any dataset, whose pictures are not read: ")
    from engine.memory.preset_table import load_preset_estimates

    for name, row in load_preset_estimates().items():  # the stored figures say it as the meter does today
        for estimate in filter(None, (row.no_prior, row.prior, row.prior_fp16)):
            assert any(note.startswith(preset.split(":")[0]) for note in estimate.notes), name


@pytest.mark.parametrize(("training", "dataset", "said"), [
    ({}, {}, "cached latents and text embeddings live on disk"),
    ({"method": "lora", "train_text_encoder": True}, {}, "cached latents live on disk"),
    ({}, {"cache_latents": False}, "cached text embeddings live on disk"),
    ({"method": "lora", "train_text_encoder": True}, {"cache_latents": False}, None)])
def test_the_caches_note_names_only_what_the_run_caches(tmp_path: Path, training: dict, dataset: dict,
                                                        said: str | None) -> None:
    """Every estimate said 'cached latents and text embeddings live on disk', also where the text encoder trains (its
    embeddings are made afresh each step, on the GPU) or latents are not cached."""
    from engine.memory.meter import caches_note

    note = caches_note(tiny_profile(tmp_path, training=training, dataset=dataset))
    assert note is None if said is None else note is not None and note.startswith(said)


def test_the_folders_not_read_here_are_named_in_one_sentence(tmp_path: Path) -> None:
    """`dbtui fit` of a profile for another machine said "the pictures of 'data/dog' are not read here; the pictures of
    'data/cat' are not read here: …", once a concept."""
    empty, bare = tmp_path / "empty", tmp_path / "bare"
    empty.mkdir()
    bare.mkdir()
    folders = ["/elsewhere/dog", "/elsewhere/cat", str(empty), "/elsewhere/owl", str(bare)]
    concepts = [{"instance_dir": folder, "instance_prompt": f"photo of zwx {n}"} for n, folder in enumerate(folders)]
    note = _note(tiny_profile(tmp_path, concepts=concepts))
    assert note.startswith(f"'{empty}' and '{bare}' hold no pictures; the pictures of '/elsewhere/dog', '/elsewhere/cat' "
                           "and '/elsewhere/owl' are not read here: the VAE's encode counts"), note
