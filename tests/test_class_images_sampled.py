"""Class images made by a base model converted from a single file, as the file's conversion knows it: by its path, size
and time, and a sample of its bytes. Another file of the same size copied over it with its time kept (``cp -p``) is
converted again, and gets images of its own; a set made before conversions noted a sample is found as it was."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

from engine.dataset.profile_settings import concept_settings
from engine.models.loading import CONVERTED_FROM, resolve_model_folder
from engine.support.generated_set import MANIFEST
from tests.test_class_images_copied import _reused, _run
from tests.test_class_images_moved import _profile, _sets, made  # noqa: F401  (made: the fixture)
from tests.test_conversion_identity import conversions  # noqa: F401  (the fixture)


def _fine_tune(seed: int) -> bytes:
    return random.Random(seed).randbytes(300_000)


def _copied_over_as_cp_p_does(model: Path, content: bytes) -> None:
    before = model.stat()
    model.write_bytes(content)
    os.utime(model, ns=(before.st_atime_ns, before.st_mtime_ns))


def test_a_file_copied_over_with_its_time_kept_gets_class_images_of_its_own(
    tmp_path: Path, conversions: list[Path], made: list[int]
) -> None:
    """The file converted again, its images were the old file's: the set was known by the note less its sample."""
    model = tmp_path / "m.safetensors"
    model.write_bytes(_fine_tune(1))
    _run(tmp_path, model, resolve_model_folder(str(model), work_dir=tmp_path / "run-a" / "model"))
    [first] = _sets(tmp_path)
    _copied_over_as_cp_p_does(model, _fine_tune(2))
    made.clear()
    parents, said = _run(tmp_path, model, resolve_model_folder(str(model), work_dir=tmp_path / "run-b" / "model"))
    assert len(conversions) == 2 and made == [0, 1] and not _reused(said)
    assert len(_sets(tmp_path)) == 2 and first not in parents
    made.clear()
    again, _ = _run(tmp_path, model, resolve_model_folder(str(model), work_dir=tmp_path / "run-c" / "model"))
    assert made == [] and again == parents  # the new file's set, found by name


@pytest.mark.parametrize("noted", ["before samples", "sample left out"])
def test_a_set_made_before_samples_is_found_as_it_was(tmp_path: Path, conversions: list[Path], made: list[int],
                                                      noted: str) -> None:
    """A set made while the note held no sample ("before samples"), or while its sample was left out of the model's
    description (commit 3488970): reused for the file as those fields knew it, never made again for minutes."""
    model = tmp_path / "m.safetensors"
    model.write_bytes(_fine_tune(1))
    folder = resolve_model_folder(str(model), work_dir=tmp_path / "run-a" / "model")
    note = folder / CONVERTED_FROM
    written = json.loads(note.read_text())
    note.write_text(json.dumps({key: value for key, value in written.items() if key != "sample"}))
    _run(tmp_path, model, folder)
    [kept] = _sets(tmp_path)
    if noted == "sample left out":
        note.write_text(json.dumps(written))
    made.clear()
    parents, said = _run(tmp_path, model, resolve_model_folder(str(model), work_dir=tmp_path / "run-a" / "model"))
    assert len(conversions) == 1 and json.loads(note.read_text()) == written
    assert made == [] and parents == [kept, kept] and _sets(tmp_path) == [kept] and not _reused(said)
    assert "sample" not in json.loads(json.loads((kept / MANIFEST).read_text())["model"]["files"]["model"][0][1])
    assert concept_settings(_profile(tmp_path, model)[0], 0)["class_generated"] == (kept, 2)
