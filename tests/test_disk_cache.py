"""Latents and text embeddings cached on disk: keyed by what determines them, written atomically,
read back memory-mapped, reused by a re-run, and made again when their inputs change."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

from engine.data.cache_keys import content_hash, latent_key, module_fingerprint, text_key
from engine.data.disk_cache import DiskStore
from engine.data.encoders import LatentSource, TextSource
from engine.data.examples import Example
from engine.runs.in_process import train
from engine.runs.sinks import read_events
from tests.training_helpers import tiny_profile


@pytest.fixture(scope="module")
def pipe(tiny_sd1: Path) -> Any:
    from diffusers import StableDiffusionPipeline

    return StableDiffusionPipeline.from_pretrained(tiny_sd1)


def _images(demo_data: Path, folder: Path, count: int = 3) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    sources = sorted((demo_data / "instance").glob("*.png"))[:count]
    return [Path(shutil.copy(source, folder / source.name)) for source in sources]


def _latents(vae: Any, paths: list[Path], folder: Path, *, hflip: bool = False, bucket: tuple[int, int] = (64, 64)) -> LatentSource:
    examples = [Example(path=p, caption="", concept=0, is_class=False, bucket=bucket) for p in paths]
    return LatentSource(vae, examples, device=torch.device("cpu"), dtype=torch.float32, cache=True, hflip=hflip,
                        store=DiskStore(folder))


def test_a_store_writes_atomically_reads_back_exactly_and_treats_a_broken_file_as_missing(tmp_path: Path) -> None:
    store = DiskStore(tmp_path / "c")
    entry = {"params": torch.randn(8, 4, 4), "half": torch.randn(3).to(torch.bfloat16)}
    assert store.get("k") is None and not store.has("k")
    store.put("k", entry)
    back = store.get("k")
    assert back is not None and all(torch.equal(back[n], entry[n]) and back[n].dtype == entry[n].dtype for n in entry)
    assert [p.name for p in (tmp_path / "c").iterdir()] == ["k.safetensors"]  # no temporary file left
    whole = store.path("k").read_bytes()
    store.path("k").write_bytes(b"\x00" * 5)  # what a crash of the disk could leave
    assert not store.has("k") and store.get("k") is None
    store.path("k").write_bytes(whole[:-3])  # a copy that ran out of disk: the header whole, the data not
    assert not store.has("k")
    reader = DiskStore(tmp_path / "r", writes=False)
    reader.put("k", entry)
    assert not reader.has("k")


def test_a_killed_writers_temporary_files_are_dropped_and_a_live_ones_kept(tmp_path: Path) -> None:
    import os
    import subprocess

    tmp_path.joinpath("latents").mkdir()
    gone = subprocess.Popen(["true"])
    gone.wait()
    from engine.convert.partials import THIS_HOST

    dead = tmp_path / "latents" / f".abc.safetensors.{THIS_HOST}.{gone.pid}.0123abcd.tmp"
    older = tmp_path / "latents" / f".abd.safetensors.{gone.pid}.0123abcd.tmp"  # named before the host was
    live = tmp_path / "latents" / f".def.safetensors.{THIS_HOST}.{os.getpid()}.4567ef01.tmp"
    # Another machine's writer on a shared run folder: its pid means nothing here.
    elsewhere = tmp_path / "latents" / f".abe.safetensors.other-machine.{gone.pid}.0123abcd.tmp"
    stray = tmp_path / "latents" / ".x.tmp"
    for file in (dead, older, live, elsewhere, stray):
        file.write_bytes(b"half")
    DiskStore(tmp_path / "latents", writes=False)  # a reader leaves them to the writer
    assert dead.exists()
    DiskStore(tmp_path / "latents")
    assert not dead.exists() and not older.exists() and live.exists() and elsewhere.exists()


def test_written_entries_get_the_usual_permissions_not_safetensors_owner_only(tmp_path: Path) -> None:
    from engine.convert._files import FILE_MODE

    store = DiskStore(tmp_path / "latents")
    store.put("k", {"latents": torch.zeros(2)})
    assert store.path("k").stat().st_mode & 0o777 == FILE_MODE


def test_an_entry_is_flushed_to_disk_before_it_is_renamed_into_place(tmp_path: Path, monkeypatch) -> None:
    """Renamed unflushed, a power loss could leave an entry at full length with zeroed data, which ``has`` accepts."""
    import os

    calls: list[tuple[str, str]] = []
    fsync, replace = os.fsync, os.replace

    def recorded_fsync(fd: int) -> None:
        calls.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        fsync(fd)

    def recorded_replace(source: Any, target: Any) -> None:
        calls.append(("replace", str(source)))
        replace(source, target)

    monkeypatch.setattr(os, "fsync", recorded_fsync)
    monkeypatch.setattr(os, "replace", recorded_replace)
    DiskStore(tmp_path).put("k", {"x": torch.ones(3)})
    assert [what for what, _ in calls] == ["fsync", "replace"] and calls[0][1] == calls[1][1]
    assert ".k.safetensors." in calls[0][1]


def test_latent_keys_follow_the_image_bytes_bucket_flip_and_vae_weights(tmp_path: Path, demo_data: Path, pipe: Any) -> None:
    first, second = _images(demo_data, tmp_path / "a", 2)
    renamed = Path(shutil.copy(first, tmp_path / "renamed.png"))
    vae = pipe.vae
    fingerprint = module_fingerprint(vae)
    key = latent_key(content_hash(first), fingerprint, (64, 64), False)
    assert latent_key(content_hash(renamed), module_fingerprint(vae), (64, 64), False) == key  # same bytes, same entry
    assert latent_key(content_hash(second), fingerprint, (64, 64), False) != key
    assert latent_key(content_hash(first), fingerprint, (64, 32), False) != key
    assert latent_key(content_hash(first), fingerprint, (64, 64), True) != key

    tuned = copy.deepcopy(vae)
    with torch.no_grad():  # a fine-tune moves every element of the weights it touches
        tuned.encoder.conv_in.weight.add_(1e-3 * torch.randn_like(tuned.encoder.conv_in.weight))
    assert module_fingerprint(tuned) != fingerprint
    assert module_fingerprint(copy.deepcopy(vae).half()) != fingerprint


def test_text_keys_follow_the_caption_tokens_clip_skip_family_and_encoder(pipe: Any) -> None:
    encoders = [module_fingerprint(pipe.text_encoder)]
    key = text_key("photo of zwx disc", "sd", 1, encoders, [pipe.tokenizer])
    assert text_key("photo of zwx disc", "sd", 1, encoders, [pipe.tokenizer]) == key
    assert text_key("photo of a disc", "sd", 1, encoders, [pipe.tokenizer]) != key
    assert text_key("photo of zwx disc", "sd", 2, encoders, [pipe.tokenizer]) != key
    assert text_key("photo of zwx disc", "sdxl", 1, encoders, [pipe.tokenizer]) != key
    assert text_key("photo of zwx disc", "sd", 1, ["other"], [pipe.tokenizer]) != key
    tokenizer = copy.deepcopy(pipe.tokenizer)
    tokenizer.add_tokens(["zwx"])  # a textual-inversion token: the same caption reads differently
    assert text_key("photo of zwx disc", "sd", 1, encoders, [tokenizer]) != key


@pytest.mark.parametrize("change", [
    {"pad_token": "!"},  # SD2's OpenCLIP tokenizer pads with "!", SD1's CLIP with its end token
    {"padding_side": "left"},
    {"truncation_side": "left"},  # a long caption keeps its end, not its start
])
def test_text_keys_follow_how_the_tokenizer_pads_and_cuts_the_caption(pipe: Any, change: dict[str, str]) -> None:
    """The key held the unpadded ids alone: a tokenizer override differing only there reused other embeddings."""
    encoders = [module_fingerprint(pipe.text_encoder)]
    key = text_key("photo of zwx disc", "sd", 1, encoders, [pipe.tokenizer])
    tokenizer = copy.deepcopy(pipe.tokenizer)
    for name, value in change.items():
        setattr(tokenizer, name, value)
    assert tokenizer("photo of zwx disc").input_ids == pipe.tokenizer("photo of zwx disc").input_ids
    assert text_key("photo of zwx disc", "sd", 1, encoders, [tokenizer]) != key


def test_a_second_source_on_the_folder_encodes_nothing_and_reads_the_same_bits(tmp_path: Path, demo_data: Path, pipe: Any) -> None:
    paths = _images(demo_data, tmp_path / "images")
    first = _latents(pipe.vae, paths, tmp_path / "cache", hflip=True)
    first.fill(lambda event: None)
    assert first.encode_calls == len(paths)
    assert len(list((tmp_path / "cache").glob("*.safetensors"))) == 2 * len(paths)

    again = _latents(pipe.vae, paths, tmp_path / "cache", hflip=True)
    again.fill(lambda event: None)
    assert again.encode_calls == 0
    expected = first._encode(1, [False, True])[True]  # as fill encodes it: both flips in one batch
    assert torch.equal(again.params(1, True), expected)

    # Nothing is held in RAM: a lost file is encoded again on the next read, and written back.
    next((tmp_path / "cache").glob("*.safetensors")).unlink()
    for index in range(len(paths)):
        again.params(index, False), again.params(index, True)
    assert again.encode_calls == 1
    assert len(list((tmp_path / "cache").glob("*.safetensors"))) == 2 * len(paths)


def test_new_image_bytes_a_new_bucket_or_new_vae_weights_are_encoded_again(tmp_path: Path, demo_data: Path, pipe: Any) -> None:
    from PIL import Image

    paths = _images(demo_data, tmp_path / "images")
    _latents(pipe.vae, paths, tmp_path / "cache").fill(lambda event: None)

    Image.open(paths[0]).rotate(90).save(paths[0])  # the same file name, new content
    edited = _latents(pipe.vae, paths, tmp_path / "cache")
    edited.fill(lambda event: None)
    assert edited.encode_calls == 1

    resized = _latents(pipe.vae, paths, tmp_path / "cache", bucket=(64, 32))
    resized.fill(lambda event: None)
    assert resized.encode_calls == len(paths)

    tuned = copy.deepcopy(pipe.vae)
    with torch.no_grad():
        for param in tuned.parameters():
            param.add_(1e-3)
    other_model = _latents(tuned, paths, tmp_path / "cache")
    other_model.fill(lambda event: None)
    assert other_model.encode_calls == len(paths)


def test_text_embeddings_are_read_back_instead_of_encoded(tmp_path: Path, pipe: Any) -> None:
    from engine.models.sd import StableDiffusion

    def source() -> TextSource:
        return TextSource(StableDiffusion(), [pipe.tokenizer], [pipe.text_encoder], device=torch.device("cpu"), clip_skip=1,
                          cache=True, store=DiskStore(tmp_path / "text"))

    captions = ["photo of zwx disc", "photo of a disc", "photo of zwx disc"]
    first = source()
    first.fill(captions)
    assert first.encode_calls == 2
    again = source()
    hidden = again.get(captions)["hidden"]
    assert again.encode_calls == 0
    # As the cache encoded them, one caption at a time: a batch of three may round otherwise on some CPUs' kernels.
    with torch.no_grad():
        alone = torch.stack([first.encode([caption])["hidden"][0] for caption in captions])
    assert torch.equal(hidden, alone)


def test_a_rerun_in_the_run_folder_encodes_nothing_and_a_new_resolution_encodes_the_images_again(
        tmp_path: Path, encode_calls: dict[str, int]) -> None:
    calls = encode_calls
    run_dir = tmp_path / "run"
    profile = tiny_profile(tmp_path, dataset={"resolution": 64, "hflip": True}, training={"max_train_steps": 2})
    captured = {}
    train(profile, run_dir, trainer_hook=lambda t: captured.setdefault("trainer", t))
    images = len(captured["trainer"].examples)
    assert calls == {"vae": 2 * images, "text": 1}
    assert len(list((run_dir / "cache" / "latents").glob("*.safetensors"))) == 2 * images
    assert len(list((run_dir / "cache" / "text").glob("*.safetensors"))) == 1

    calls.update(vae=0, text=0)
    train(profile, run_dir)
    assert calls == {"vae": 0, "text": 0}

    train(tiny_profile(tmp_path, dataset={"resolution": 32, "hflip": True}, training={"max_train_steps": 2}), run_dir)
    assert calls == {"vae": 2 * images, "text": 0}


def test_a_resume_reads_the_cache_and_encodes_nothing(tmp_path: Path, encode_calls: dict[str, int]) -> None:
    import threading

    from engine.runs.checkpoints import latest_checkpoint
    from engine.runs.folder import RunFolder
    from engine.runs.supervisor import Supervisor

    calls = encode_calls
    profile = tiny_profile(tmp_path, training={"max_train_steps": 4}, saving={"every_n_steps": 2})
    folder = RunFolder(tmp_path / "run").create()
    cancel = threading.Event()
    first = Supervisor(folder, cancel=cancel)
    stop_after_two = lambda trainer, step: cancel.set() if step == 2 else None
    assert train(profile, folder.path, cancel=cancel, step_hooks=[first.on_step, stop_after_two], trainer_hook=first.attach).step == 2
    assert calls["vae"] > 0

    calls["vae"] = 0
    second = Supervisor(folder, resume=latest_checkpoint(folder))
    result = train(profile, folder.path, step_hooks=[second.on_step], trainer_hook=second.attach)
    assert result.status == "finished" and result.step == 4
    assert [e.resumed_from_step for e in read_events(folder.events) if e.kind == "run_started"] == [0, 2]
    # The resume's training phase says the steps it trains, not the run's whole count.
    assert [e.description for e in read_events(folder.events) if e.kind == "phase_started" and e.phase == "training"] == \
        ["4 steps", "steps 3-4 of 4"]
    assert calls["vae"] == 0


def test_the_caching_pass_names_every_image_it_cannot_decode_at_once(tmp_path: Path, demo_data: Path, pipe: Any) -> None:
    """Damage past the header (a cut-short JPEG) shows only when an image is decoded: the pass goes on, then names them all."""
    from engine.data.images import DataError

    good = _images(demo_data, tmp_path / "a", 1)
    broken = []
    for name in ("cut-a.png", "cut-b.png"):
        data = good[0].read_bytes()
        path = tmp_path / "a" / name
        path.write_bytes(data[: len(data) // 2])
        broken.append(path)
    source = _latents(pipe.vae, [*broken, *good], tmp_path / "cache")
    events = []
    with pytest.raises(DataError, match=r"2 image file\(s\) cannot be decoded .*cut-a.png.*cut-b.png"):
        source.fill(events.append)
    assert [e.done for e in events if e.kind == "phase_progress"] == [1, 2, 3]  # every image was tried
    assert source.store.has(source._key(2, False))  # the good one is cached


def test_a_32_bit_integer_image_cached_under_its_old_conversion_is_encoded_again(tmp_path: Path, demo_data: Path,
                                                                                 pipe: Any) -> None:
    """An "I" image's decoding changed (0-255 levels were shifted to black); its latents cached before were found all
    the same, so it kept training black. Its key now holds that conversion's version; every other image's key is as
    it was, so the latents a user cached of ordinary pictures are not all encoded again."""
    import numpy as np
    from PIL import Image

    rgb = _images(demo_data, tmp_path / "images", 1)[0]
    grey = tmp_path / "images" / "grey.tif"
    Image.fromarray((np.indices((64, 64)).sum(0) % 256).astype(np.int32)).save(grey)
    store, fingerprint, black = DiskStore(tmp_path / "cache"), module_fingerprint(pipe.vae), torch.zeros(8, 8, 8)
    for path in (rgb, grey):  # as the earlier version keyed them
        store.put(latent_key(content_hash(path), fingerprint, (64, 64), False), {"params": black})
    source = _latents(pipe.vae, [rgb, grey], tmp_path / "cache")
    source.fill(lambda event: None)
    assert source.encode_calls == 1 and not torch.equal(source.params(1, False), black)
    assert torch.equal(source.params(0, False), black)
    # The key of an ordinary image, exactly as the earlier version made it.
    assert latent_key("0" * 64, "vae", (64, 64), False) == "8d9f4ba73c93f1a848fb34925f84d6873624000231d7c048e12b1c37e2ab60a1"
