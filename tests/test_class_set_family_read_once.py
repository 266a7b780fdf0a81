"""Concepts sharing a class folder and class prompt that differ only in class_negative_prompt are one set or two by the
model's family (class_sharers), which a single file tells only once read: an old pickle .ckpt is unpickled. The
wizard's Dataset step asked again on its UI thread each time it drew the concept's class-image line (a concept chosen,
the step shown again, a check ended); a file is now read once while its size and time stay."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image
from textual.widgets import Select, Static

import engine.model_info
from dbtui.app import make_app
from dbtui.session import Session
from engine.dataset.profile_settings import shared_class_set
from engine.model_info import ModelDescription
from engine.profile import validate_data
from wizard_fakes import FakeEngine
from wizard_steps import at_step, settle

SHARED = ("4 to generate in all for concepts 1 and 2 (one class folder and prompt: the run makes the most that any of "
          "them wants, once)")


def _draft(tmp_path: Path) -> dict:
    """An old Flux .ckpt; concepts 1 and 2 share animal-class/ (2 pictures) and its prompt, wanting 4 and 6, one with a
    negative prompt, which Flux does not read."""
    model = tmp_path / "old-flux.ckpt"
    model.write_bytes(b"pickle")
    (tmp_path / "animal-class").mkdir()
    for index in range(2):
        Image.new("RGB", (64, 64)).save(tmp_path / "animal-class" / f"{index}.png")
    concepts = []
    for name, count, negative in (("dog", 4, {"class_negative_prompt": "blurry"}), ("cat", 6, {})):
        (tmp_path / name).mkdir()
        Image.new("RGB", (64, 64)).save(tmp_path / name / "0.png")
        concepts.append({"instance_dir": str(tmp_path / name), "instance_prompt": f"photo of zwx {name}",
                         "class_prompt": "photo of an animal", "class_dir": str(tmp_path / "animal-class"),
                         "num_class_images": count, **negative})
    return {"model": {"pretrained": str(model)}, "prior": {"enabled": True}, "concepts": concepts}


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each source the slow lookup (describe_model, which unpickles a .ckpt) reads; each is told Flux."""
    read: list[str] = []

    def flux(source: str, **_) -> ModelDescription:
        read.append(source)
        return ModelDescription(source, "single-file", "single file: Flux", None, family_id="flux")

    monkeypatch.setattr(engine.model_info, "describe_model", flux)
    return read


def test_a_single_file_is_read_once_while_it_stays_the_same(tmp_path: Path, reads: list[str]) -> None:
    draft = _draft(tmp_path)
    profile = validate_data(draft)
    for index in (0, 1, 0, 1):
        assert shared_class_set(profile, index) == ((0, 1), 6)
    assert len(reads) == 1
    model = Path(draft["model"]["pretrained"])
    model.write_bytes(b"another pickle")  # replaced: read again
    os.utime(model, ns=(1, 1))
    assert shared_class_set(profile, 0) == ((0, 1), 6)
    assert len(reads) == 2


async def test_the_dataset_step_reads_the_model_once_as_the_user_moves_between_concepts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reads: list[str]) -> None:
    monkeypatch.chdir(tmp_path)
    session = Session.for_demo()
    session.data.update(_draft(tmp_path))
    app = make_app(FakeEngine(), session, image_renderer="none")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await at_step(app, pilot, 2, "DatasetScreen")
        await pilot.press("ctrl+r")
        await settle(pilot)
        line = screen.query_one("#ds-class-count", Static)
        assert str(line.render()) == f"wanted: 2 in the class folder, {SHARED}"
        screen.query_one("#ds-concept", Select).focus()
        for _ in range(2):  # to concept 2 and back, by keys
            for key in ("enter", "down" if screen.concept == 0 else "up", "enter"):
                await pilot.press(key)
                await settle(pilot, 0)
            await pilot.press("ctrl+r")
            await settle(pilot)
            assert str(line.render()) == f"wanted: 2 in the class folder, {SHARED}"
        assert screen.concept == 0
        assert reads == [session.get("model.pretrained")]
