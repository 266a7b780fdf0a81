"""The hash a new set of class images records: of the files the model's load reads (not an .fp16. variant or a .ckpt
beside them), in a thread while the images are made, stopped with the run; a set's older blake2b hash of every weight
file is still read."""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from engine.support.generated_set import DIGEST, MANIFEST
from engine.training import model_weights, weight_hashing
from tests.test_class_images_copied import _copied, _reused, _run
from tests.test_class_images_moved import _sets, made  # noqa: F401  (made: the fixture)


def _digest_of(made_set: Path) -> dict[str, str]:
    return json.loads((made_set / MANIFEST).read_text())[DIGEST]


def test_weight_files_the_load_never_reads_do_not_make_a_copy_another_model(tmp_path: Path, tiny_sd1: Path,
                                                                            made: list[int]) -> None:
    """An .fp16. variant and a .ckpt beside the diffusers files: hashed too, so a copy that differs in them alone made
    every image again (and an SDXL folder with its variants took twice the hashing)."""
    model = _copied(tiny_sd1, tmp_path / "m0")
    shutil.copyfile(model / "unet" / "diffusion_pytorch_model.safetensors",
                    model / "unet" / "diffusion_pytorch_model.fp16.safetensors")
    (model / "m0.ckpt").write_bytes(b"\0" * 64)
    _run(tmp_path, model)
    [kept] = _sets(tmp_path)
    assert _digest_of(kept)["model"].startswith("sha256:")
    copy = _copied(model, tmp_path / "m1")
    (copy / "m0.ckpt").write_bytes(b"\1" * 64)  # the same names and sizes, other bytes: unread by the load
    variant = copy / "unet" / "diffusion_pytorch_model.fp16.safetensors"
    variant.write_bytes(variant.read_bytes()[:-1] + b"\0")
    made.clear()
    parents, said = _run(tmp_path, copy)
    assert made == [] and parents == [kept, kept] and len(_reused(said)) == 1


def _legacy_blake2b(folder: Path) -> str:
    """The hash dbtui recorded first: blake2b of every weight file's name, size and bytes."""
    hasher = hashlib.blake2b()
    for file in sorted(folder.rglob("*")):
        if file.suffix in {".safetensors", ".bin", ".ckpt", ".pt", ".gguf"} and file.is_file():
            hasher.update(json.dumps([file.relative_to(folder).as_posix(), file.stat().st_size]).encode())
            hasher.update(file.read_bytes())
    return hasher.hexdigest()


@pytest.mark.parametrize("recorded, reused", [("as_made", True), ("another", False)])
def test_a_set_with_the_older_blake2b_hash_is_still_told_by_it(tmp_path: Path, tiny_sd1: Path, made: list[int],
                                                               recorded: str, reused: bool) -> None:
    model = _copied(tiny_sd1, tmp_path / "m0")
    _run(tmp_path, model)
    [kept] = _sets(tmp_path)
    manifest = json.loads((kept / MANIFEST).read_text())
    manifest[DIGEST] = {"model": _legacy_blake2b(model) if recorded == "as_made" else "0" * 128}
    (kept / MANIFEST).write_text(json.dumps(manifest))
    shutil.rmtree(_copied(model, tmp_path / "m1").parent / "m0")  # the set's hash alone can tell
    made.clear()
    _, said = _run(tmp_path, tmp_path / "m1")
    assert (made == []) == reused and (len(_reused(said)) == 1) == reused


def test_the_model_is_hashed_in_a_thread_while_the_images_are_made(tmp_path: Path, tiny_sd1: Path, made: list[int],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """It was hashed on the run's own thread after the first batch, the GPU idle meanwhile (a minute for Flux)."""
    threads: list[str] = []
    hashed = weight_hashing.digest

    def digest(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return hashed(*args, **kwargs)

    monkeypatch.setattr(model_weights, "digest", digest)
    _run(tmp_path, _copied(tiny_sd1, tmp_path / "m0"))
    [kept] = _sets(tmp_path)
    assert made == [0, 1] and _digest_of(kept)["model"].startswith("sha256:")
    assert len(threads) == 1 and threads[0] != threading.main_thread().name


def test_hashing_stops_when_the_run_is_stopped(tiny_sd1: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(weight_hashing, "_BLOCK", 1024)  # blocks enough to stop between
    read: list[int] = []
    settings = SimpleNamespace(pretrained=str(tiny_sd1), revision=None, vae=None, quantize=None)
    weights = model_weights.WeightDigests(settings, tiny_sd1)
    assert weights.now(should_stop=lambda: read.append(1) is None and len(read) > 3) is None
    assert len(read) == 4  # stopped at the fourth block, not read to the end
    assert weights.now() == model_weights.WeightDigests(settings, tiny_sd1).now()  # a stopped hash is not kept


def test_the_dataset_check_hashes_the_model_once_and_shows_it(tmp_path: Path, tiny_sd1: Path, made: list[int],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """For a family that reads no negative prompt (Flux) the check searched twice, each search hashing the model
    anew (two minutes for Flux), and said nothing meanwhile."""
    import copy

    from engine.dataset import profile_settings
    from engine.dataset.profile_settings import concept_settings
    from engine.models.registry import family_named
    from tests.test_class_images_moved import _profile

    tuned = _copied(tiny_sd1, tmp_path / "tuned")
    weights = tuned / "unet" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\7")  # the same names and sizes as the model checked
    _run(tmp_path, tuned)  # its set: hashed, and found another model's by the check's every search
    reads_none = copy.copy(family_named("sd"))
    reads_none.takes_negative_prompt = False
    monkeypatch.setattr(profile_settings, "_family", lambda source: reads_none)
    hashed: list[Path] = []
    digest = weight_hashing.digest
    monkeypatch.setattr(model_weights, "digest", lambda source, *a, **k: hashed.append(source) or digest(source, *a, **k))
    profile = _profile(tmp_path, _copied(tiny_sd1, tmp_path / "m1"))[0]
    assert concept_settings(profile, 0)["class_generated"] == (None, 0)
    assert hashed == [tmp_path / "m1"]
    monkeypatch.setattr(weight_hashing, "_SHOWN_AFTER", 0)  # the tiny model, hashed as a large one on a slow disk
    events: list = []
    concept_settings(profile, 0, emit=events.append)
    assert [event.kind for event in events if event.phase == weight_hashing.PHASE][:1] == ["phase_started"]


@pytest.mark.parametrize("config, reused", [("parameterization: eps\n", True), ("parameterization: v_p\n", False)])
def test_a_moved_single_file_with_another_yaml_of_the_same_size_is_another_model(tmp_path: Path, tiny_sd1: Path,
                                                                                 made: list[int], config: str,
                                                                                 reused: bool) -> None:
    """The .yaml beside a single file was compared by its size alone: another config of the same length (another
    prediction type) reused the first one's images."""
    from tests.test_class_images_copied import _single_file_run

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    file = tmp_path / "a" / "model.safetensors"
    shutil.copyfile(tiny_sd1 / "unet" / "diffusion_pytorch_model.safetensors", file)
    (tmp_path / "a" / "model.yaml").write_text("parameterization: eps\n")  # as long as either config
    _single_file_run(tmp_path, tiny_sd1, file, "run-a")
    moved = file.rename(tmp_path / "b" / "model.safetensors")
    (tmp_path / "a" / "model.yaml").unlink()
    (tmp_path / "b" / "model.yaml").write_text(config)
    made.clear()
    _, said = _single_file_run(tmp_path, tiny_sd1, moved, "run-b")
    assert (made == []) == reused and (len(_reused(said)) == 1) == reused


def test_a_part_laid_out_otherwise_is_hashed_whole(tmp_path: Path) -> None:
    """A part holding only an .fp16. variant was left out of the hash, so two models differing there alone were one."""
    for part, name in (("unet", "diffusion_pytorch_model.fp16.safetensors"), ("vae", "diffusion_pytorch_model.safetensors"),
                       ("vae", "diffusion_pytorch_model.fp16.safetensors")):
        (tmp_path / part).mkdir(exist_ok=True)
        (tmp_path / part / name).write_bytes(b"w")
    names = [name for name, _ in weight_hashing.hashed_files(tmp_path, weight_hashing.CURRENT)]
    assert names == ["unet/diffusion_pytorch_model.fp16.safetensors", "vae/diffusion_pytorch_model.safetensors"]
