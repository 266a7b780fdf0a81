"""Class images made by a base model whose folder was moved since: the same weight files, read from the new place, make
the same images, so the set made at the old place is reused (and topped up) rather than made again beside it; a model
with other weights, at the same path or another, still gets a set of its own."""

from __future__ import annotations

import contextlib
import shutil
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file, save_file

from engine.builtin import resolve_dir
from engine.dataset.profile_settings import concept_settings
from engine.events import Event, Warning
from engine.models.registry import family_named
from engine.profile.schema import Profile
from engine.support.generated_set import is_generated_set
from engine.training import class_generation, class_images
from tests.test_class_folder import _Picture
from tests.training_helpers import tiny_profile


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The image numbers generated, by a stand-in for the model."""
    numbers: list[int] = []

    def generate(pipe, request, settings, *, indices, prompt_kwargs, family):
        numbers.extend(indices)
        return [_Picture() for _ in indices]

    monkeypatch.setattr(class_images, "_generate", generate)
    monkeypatch.setattr(class_generation.ClassImageModel, "pipeline", lambda self: None)
    return numbers


def _run(tmp_path: Path, model: Path, count: int = 2, concepts: int = 1) -> tuple[dict[int, list[Path]], list[str]]:
    """run_class_images of a run on ``model`` whose ``concepts`` share tmp_path/class: (the images, its warnings)."""
    profile, instances = _profile(tmp_path, model, count, concepts)
    events: list[Event] = []
    accelerator = SimpleNamespace(num_processes=1, is_main_process=True, wait_for_everyone=lambda: None)
    trainer = SimpleNamespace(profile=profile, class_dirs=[tmp_path / "class"] * concepts, model_folder=model,
                              accelerator=accelerator, components=SimpleNamespace(family=family_named("sd")),
                              device=torch.device("cpu"), dtype=torch.float32, cancel=threading.Event(),
                              instance_dirs=instances, buckets=[(64, 64)],
                              emit=events.append, half_precision=contextlib.nullcontext)
    images = class_generation.run_class_images(trainer)
    assert images is not None
    return images, [event.message for event in events if isinstance(event, Warning)]


def _profile(tmp_path: Path, model: Path, count: int = 2, concepts: int = 1) -> tuple[Profile, list[Path]]:
    instances = [resolve_dir("builtin:demo-instance"), *(_copied(tmp_path / f"instances-{n}") for n in range(1, concepts))]
    concept = {"instance_prompt": "photo of zwx disc", "class_dir": str(tmp_path / "class"), "class_prompt": "photo of a disc",
               "num_class_images": count}
    profile = tiny_profile(tmp_path, model={"pretrained": str(model)},
                           concepts=[{**concept, "instance_dir": str(place)} for place in instances],
                           prior={"enabled": True, "steps": 2, "guidance_scale": 5.0})
    return profile, instances


def _copied(place: Path) -> Path:
    if not place.is_dir():
        shutil.copytree(resolve_dir("builtin:demo-instance"), place)
    return place


def _sets(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "class").glob("generated-*"))


def test_a_run_on_the_models_moved_folder_reuses_its_class_images_and_says_so_once(tmp_path: Path, tiny_sd1: Path,
                                                                                     made: list[int]) -> None:
    """A resume (or a new run) naming the moved folder made the whole set again into a new generated-… folder, beside
    the one made at the old place, whose manifest differed only in the model's path."""
    shutil.copytree(tiny_sd1, tmp_path / "m0")
    first, _ = _run(tmp_path, tmp_path / "m0")
    (tmp_path / "m0").rename(tmp_path / "m1")
    made.clear()
    again, said = _run(tmp_path, tmp_path / "m1", concepts=2)
    [kept] = _sets(tmp_path)
    assert made == [] and again == {0: first[0], 1: first[0]}
    # What `dbtui dataset check --profile` tells of a profile on the moved folder: that set, none to generate.
    assert concept_settings(_profile(tmp_path, tmp_path / "m1")[0], 0)["class_generated"] == (kept, 2)
    assert [line for line in said if "reused" in line] == [
        f"concepts.0.class_dir: the class images in '{kept}' were made by the base model at {tmp_path / 'm0'}, whose "
        f"weight files {tmp_path / 'm1'} holds as they were: reused, not made again"]


def test_a_part_made_set_of_the_moved_model_is_topped_up_where_it_is(tmp_path: Path, tiny_sd1: Path,
                                                                     made: list[int]) -> None:
    shutil.copytree(tiny_sd1, tmp_path / "m0")
    _run(tmp_path, tmp_path / "m0", count=2)
    (tmp_path / "m0").rename(tmp_path / "m1")
    made.clear()
    images, _ = _run(tmp_path, tmp_path / "m1", count=3)
    [kept] = _sets(tmp_path)
    assert made == [2] and [p.parent for p in images[0]] == [kept] * 3
    assert is_generated_set(kept)  # its manifest still names the model as it was when the set was begun


def test_a_model_with_other_weights_gets_a_set_of_its_own_at_any_path(tmp_path: Path, tiny_sd1: Path,
                                                                      made: list[int]) -> None:
    shutil.copytree(tiny_sd1, tmp_path / "m0")
    _run(tmp_path, tmp_path / "m0")
    shutil.copytree(tmp_path / "m0", tmp_path / "other")
    _change_weights(tmp_path / "other")
    made.clear()
    _, said = _run(tmp_path, tmp_path / "other")
    assert made == [0, 1] and len(_sets(tmp_path)) == 2 and not [line for line in said if "reused" in line]
    _change_weights(tmp_path / "m0", by=3)  # replaced in place (by 2: the bytes of "other", whose set it would reuse)
    made.clear()
    _run(tmp_path, tmp_path / "m0")
    assert made == [0, 1] and len(_sets(tmp_path)) == 3


def _change_weights(model: Path, by: int = 2) -> None:
    weights = model / "unet" / "diffusion_pytorch_model.safetensors"
    save_file({name: tensor + by for name, tensor in load_file(weights).items()}, weights)
