"""A single file's conversion is reused for that file's bytes: another file of the same size copied over it with its
time kept (``cp -p``) is converted again, and a note written before samples were noted is reused, not converted."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest

from engine.model_import import conversion_target, import_model
from engine.models.loading import CONVERTED_FROM, resolve_model_folder
from engine.training.model_weights import described_before_samples, model_identity
from fake_conversion import copy_converted


@pytest.fixture
def conversions(tiny_sd1: Path, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Each conversion made; each "converts" into a copy of the tiny SD1.x model."""
    import engine.convert

    made: list[Path] = []

    def convert(path: Path, out: Path, before_publish: Callable[[Path], None] | None = None, **_: object) -> Path:
        copy_converted(tiny_sd1, out, before_publish)
        made.append(path)
        return out

    monkeypatch.setattr(engine.convert, "import_single_file", convert)
    return made


def _copied_over_as_cp_p_does(model: Path, content: bytes) -> None:
    """Another file of the same size written over ``model``, its modification time set back as ``cp -p`` sets it."""
    before = model.stat()
    assert len(content) == before.st_size
    model.write_bytes(content)
    os.utime(model, ns=(before.st_atime_ns, before.st_mtime_ns))


def test_a_file_copied_over_with_its_time_kept_is_converted_again(conversions: list[Path], tmp_path: Path) -> None:
    """Known by path, size and time alone, its old conversion was trained on."""
    model = tmp_path / "m.safetensors"
    model.write_bytes(b"first fine-tune")
    work = tmp_path / "run" / "model"
    resolve_model_folder(str(model), work_dir=work)
    resolve_model_folder(str(model), work_dir=work)
    assert len(conversions) == 1
    _copied_over_as_cp_p_does(model, b"other fine-tune")
    resolve_model_folder(str(model), work_dir=work)
    assert len(conversions) == 2


def test_the_wizard_does_not_offer_a_conversion_of_a_file_copied_over_since(conversions: list[Path],
                                                                             tmp_path: Path) -> None:
    model = tmp_path / "m.safetensors"
    model.write_bytes(b"first fine-tune")
    import_model(str(model), tmp_path / "models" / "m-diffusers")
    assert conversion_target(str(model), tmp_path / "models").holds_it
    _copied_over_as_cp_p_does(model, b"other fine-tune")
    assert not conversion_target(str(model), tmp_path / "models").holds_it


@pytest.mark.parametrize("reuse", ["run", "wizard"])
def test_a_conversion_noted_before_samples_is_reused_and_given_its_sample(reuse: str, conversions: list[Path],
                                                                          tmp_path: Path) -> None:
    """Every user's cached conversion would else be converted again, for minutes, by the first use after an update."""
    model = tmp_path / "m.safetensors"
    model.write_bytes(b"weights")
    work = tmp_path / "run" / "model"
    folder = resolve_model_folder(str(model), work_dir=work)
    note = folder / CONVERTED_FROM
    written = json.loads(note.read_text())
    note.write_text(json.dumps({key: value for key, value in written.items() if key != "sample"}))
    model_section = SimpleNamespace(pretrained=str(model), revision=None, vae=None, quantize=None)
    images_known_by = model_identity(model_section, folder)  # the sets of class images made before the update
    if reuse == "run":
        assert resolve_model_folder(str(model), work_dir=work) == folder
    else:
        assert conversion_target(str(model), into=folder).holds_it
    assert len(conversions) == 1 and json.loads(note.read_text()) == written
    # found still, not made again (tests/test_class_images_sampled.py runs it)
    assert described_before_samples(images_known_by, model_identity(model_section, folder))
