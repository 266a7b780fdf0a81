"""Class images made by a base model whose weight files are the same bytes now under other file times or at another
place: a folder copied with `cp -r` (new times), a single file moved, a moved model whose set also kept an older rule's
negative prompt. The set records a hash of the weights, so it is reused, not minutes of images made again; a model of
the same file names and sizes but one byte changed gets a set of its own."""

from __future__ import annotations

import contextlib
import copy
import json
import shutil
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from engine.dataset.profile_settings import concept_settings
from engine.events import Event, Warning
from engine.models.conversion_note import note_conversion, source_identity
from engine.models.registry import family_named
from engine.support.generated_set import DIGEST, MANIFEST, is_generated_set
from engine.training import class_generation
from tests.test_class_images_moved import _profile, _sets, made  # noqa: F401  (made: the fixture)


def _run(tmp_path: Path, model: Path, folder: Path | None = None, family: Any = None,
         negative: str = "", events: list[Event] | None = None) -> tuple[list[int], list[str]]:
    """run_class_images of a run on the profile's ``model`` read from ``folder`` (the model's own, or a single file's
    conversion): (the images' parents, its warnings); its events in ``events`` where given."""
    profile, instances = _profile(tmp_path, model)
    concept = profile.concepts[0].model_copy(update={"class_negative_prompt": negative})
    profile = profile.model_copy(update={"concepts": [concept]})
    events = [] if events is None else events
    accelerator = SimpleNamespace(num_processes=1, is_main_process=True, wait_for_everyone=lambda: None)
    trainer = SimpleNamespace(profile=profile, class_dirs=[tmp_path / "class"], model_folder=folder or model,
                              accelerator=accelerator, components=SimpleNamespace(family=family or family_named("sd")),
                              device=torch.device("cpu"), dtype=torch.float32, cancel=threading.Event(),
                              instance_dirs=instances, buckets=[(64, 64)],
                              emit=events.append, half_precision=contextlib.nullcontext)
    images = class_generation.run_class_images(trainer)
    assert images is not None
    return [p.parent for p in images[0]], [event.message for event in events if isinstance(event, Warning)]


def _copied(source: Path, to: Path) -> Path:
    """`cp -r`: the same bytes, new file times."""
    shutil.copytree(source, to, copy_function=shutil.copyfile)
    return to


def _reused(said: list[str]) -> list[str]:
    return [line for line in said if "reused" in line]


def test_a_cp_r_copy_of_the_model_reuses_its_class_images(tmp_path: Path, tiny_sd1: Path, made: list[int]) -> None:
    """`cp -r` of the model folder, then a run (or a resume) on the copy: images [0, 1] made again into a second set."""
    _copied(tiny_sd1, tmp_path / "m0")
    _run(tmp_path, tmp_path / "m0")
    [kept] = _sets(tmp_path)
    assert is_generated_set(kept) and json.loads((kept / MANIFEST).read_text())[DIGEST]["model"]
    _copied(tmp_path / "m0", tmp_path / "m1")
    made.clear()
    parents, said = _run(tmp_path, tmp_path / "m1")
    assert made == [] and _sets(tmp_path) == [kept] and parents == [kept, kept]
    assert _reused(said) == [f"concepts.0.class_dir: the class images in '{kept}' were made by the base model at "
                             f"{tmp_path / 'm0'}, whose weight files {tmp_path / 'm1'} holds byte for byte (their content "
                             "hashes agree): reused, not made again"]
    # `dbtui dataset check --profile` on the copy: that set, none to generate.
    assert concept_settings(_profile(tmp_path, tmp_path / "m1")[0], 0)["class_generated"] == (kept, 2)


def test_one_changed_byte_under_the_same_names_and_sizes_gets_a_set_of_its_own(tmp_path: Path, tiny_sd1: Path,
                                                                               made: list[int]) -> None:
    _copied(tiny_sd1, tmp_path / "m0")
    _run(tmp_path, tmp_path / "m0")
    weights = _copied(tmp_path / "m0", tmp_path / "tuned") / "unet" / "diffusion_pytorch_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1  # the last byte of the last tensor: a header and every size as they were
    weights.write_bytes(bytes(data))
    made.clear()
    _, said = _run(tmp_path, tmp_path / "tuned")
    assert made == [0, 1] and len(_sets(tmp_path)) == 2 and not _reused(said)
    assert concept_settings(_profile(tmp_path, tmp_path / "tuned")[0], 0)["class_generated"][1] == 2  # its own


def _single_file_run(tmp_path: Path, tiny_sd1: Path, file: Path, run: str) -> tuple[list[Path], list[str]]:
    """A run on the single file ``file``, read from its conversion in the run's own folder (the converter stood in for
    by a copy of the tiny model)."""
    converted = _copied(tiny_sd1, tmp_path / run / "model" / "base-diffusers")
    note_conversion(converted, source_identity(file))
    return _run(tmp_path, file, converted)


def test_a_moved_single_file_model_reuses_its_class_images(tmp_path: Path, tiny_sd1: Path, made: list[int]) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    file = tmp_path / "a" / "model.safetensors"
    shutil.copyfile(tiny_sd1 / "unet" / "diffusion_pytorch_model.safetensors", file)
    _single_file_run(tmp_path, tiny_sd1, file, "run-a")
    [kept] = _sets(tmp_path)
    moved = file.rename(tmp_path / "b" / "model.safetensors")
    made.clear()
    parents, said = _single_file_run(tmp_path, tiny_sd1, moved, "run-b")
    assert made == [] and parents == [kept, kept] and len(_reused(said)) == 1
    assert concept_settings(_profile(tmp_path, moved)[0], 0)["class_generated"] == (kept, 2)


def _without_hash(made_set: Path) -> None:
    """As a dbtui before this one wrote it."""
    manifest = json.loads((made_set / MANIFEST).read_text())
    del manifest[DIGEST]
    (made_set / MANIFEST).write_text(json.dumps(manifest))


def test_a_set_without_a_hash_is_reused_only_where_its_model_is_there_to_hash(tmp_path: Path, tiny_sd1: Path,
                                                                              made: list[int]) -> None:
    _copied(tiny_sd1, tmp_path / "m0")
    _run(tmp_path, tmp_path / "m0")
    [kept] = _sets(tmp_path)
    _without_hash(kept)
    _copied(tmp_path / "m0", tmp_path / "m1")
    made.clear()
    parents, _ = _run(tmp_path, tmp_path / "m1")
    assert made == [] and parents == [kept, kept]  # m0 hashed as it stands, as the set describes it
    _without_hash(kept)  # which the set keeps now (test_class_images_rehashed): made so again, m0 then gone
    shutil.rmtree(tmp_path / "m0")
    _copied(tmp_path / "m1", tmp_path / "m2")
    made.clear()
    _, said = _run(tmp_path, tmp_path / "m2")
    assert made == [0, 1] and len(_sets(tmp_path)) == 2 and not _reused(said)


def test_a_moved_model_whose_set_kept_an_older_negative_prompt_reuses_it(tmp_path: Path, tiny_sd1: Path,
                                                                         made: list[int]) -> None:
    """A set made while dbtui kept sets by the negative prompt of a family that reads none (see
    earlier runs' rule), then the model moved: neither the one rule nor the other found it alone."""
    shutil.copytree(tiny_sd1, tmp_path / "m0")
    _run(tmp_path, tmp_path / "m0", negative="blurry")
    [kept] = _sets(tmp_path)
    (tmp_path / "m0").rename(tmp_path / "m1")
    reads_none = copy.copy(family_named("sd"))
    reads_none.takes_negative_prompt = False  # as Flux
    made.clear()
    parents, said = _run(tmp_path, tmp_path / "m1", family=reads_none, negative="blurry")
    assert made == [] and parents == [kept, kept] and len(_reused(said)) == 1


def test_hashing_a_large_model_shows_its_progress(tiny_sd1: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Minutes of generating are saved by seconds of hashing, said as a phase where it takes over a second."""
    from engine.training import model_weights, weight_hashing

    monkeypatch.setattr(weight_hashing, "_SHOWN_AFTER", 0)  # the tiny model, hashed as a large one on a slow disk
    monkeypatch.setattr(weight_hashing, "_MIB", 1024)
    events: list[Event] = []
    settings = SimpleNamespace(pretrained=str(tiny_sd1), revision=None, vae=None, quantize=None)
    hashed = model_weights.WeightDigests(settings, tiny_sd1, events.append).now()
    assert [event.kind for event in events][0] == "phase_started" and events[-1].kind == "phase_finished"
    progress = [event.done for event in events if event.kind == "phase_progress"]
    assert len(progress) > 1 and progress[-1] == events[0].total
    assert hashed == model_weights.WeightDigests(settings, tiny_sd1).now()  # the same bytes, the same hash
