"""A base model replaced where it stood, by files of the same names and sizes (a fine-tune saved over its folder):
its sets of class images are not the new model's, whether they record a hash of their weights or were made before
sets did (then their model is hashed where it stands, as the set describes it, or the set is not reused)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from engine.dataset.profile_settings import concept_settings
from engine.support.generated_set import DIGEST, MANIFEST
from tests.test_class_images_copied import _copied, _reused, _run, _without_hash
from tests.test_class_images_moved import _profile, _sets, made  # noqa: F401  (made: the fixture)


def _retuned_in_place(model: Path) -> None:
    """One byte of the UNet changed, its name and size as they were, a newer modification time."""
    weights = model / "unet" / "diffusion_pytorch_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))


def test_a_model_fine_tuned_in_place_does_not_reuse_a_set_made_before_hashes(tmp_path: Path, tiny_sd1: Path,
                                                                              made: list[int]) -> None:
    """The new model's hash, taken at the place first, was given for the old model's too: the wrong set reused, said
    to be the same weights "byte for byte"."""
    _copied(tiny_sd1, tmp_path / "m0")
    _run(tmp_path, tmp_path / "m0")
    [kept] = _sets(tmp_path)
    _without_hash(kept)
    _retuned_in_place(tmp_path / "m0")
    made.clear()
    _, said = _run(tmp_path, tmp_path / "m0")
    assert made == [0, 1] and len(_sets(tmp_path)) == 2 and not _reused(said)


def test_a_model_fine_tuned_in_place_does_not_reuse_a_hashed_set(tmp_path: Path, tiny_sd1: Path,
                                                                 made: list[int]) -> None:
    _copied(tiny_sd1, tmp_path / "m0")
    _run(tmp_path, tmp_path / "m0")
    assert DIGEST in json.loads((_sets(tmp_path)[0] / MANIFEST).read_text())
    _retuned_in_place(tmp_path / "m0")
    made.clear()
    _, said = _run(tmp_path, tmp_path / "m0")
    assert made == [0, 1] and len(_sets(tmp_path)) == 2 and not _reused(said)


def test_the_dataset_check_does_not_name_the_set_of_a_model_replaced_in_place(tmp_path: Path, tiny_sd1: Path,
                                                                              made: list[int]) -> None:
    """`dbtui dataset check --profile` named the old set (nothing to generate) while the run made every image again."""
    _copied(tiny_sd1, tmp_path / "m0")
    _run(tmp_path, tmp_path / "m0")
    [kept] = _sets(tmp_path)
    assert concept_settings(_profile(tmp_path, tmp_path / "m0")[0], 0)["class_generated"] == (kept, 2)
    _retuned_in_place(tmp_path / "m0")
    assert concept_settings(_profile(tmp_path, tmp_path / "m0")[0], 0)["class_generated"] == (None, 0)
    made.clear()
    _run(tmp_path, tmp_path / "m0")
    assert made == [0, 1]  # as the check said
    [new] = [found for found in _sets(tmp_path) if found != kept]
    assert concept_settings(_profile(tmp_path, tmp_path / "m0")[0], 0)["class_generated"] == (new, 2)


def test_a_set_made_before_hashes_keeps_its_models_hash_once_found(tmp_path: Path, tiny_sd1: Path,
                                                                   made: list[int]) -> None:
    """Its model was hashed again by every run on another copy of it, and the set was lost once that model was gone."""
    _copied(tiny_sd1, tmp_path / "m0")
    _run(tmp_path, tmp_path / "m0")
    [kept] = _sets(tmp_path)
    _without_hash(kept)
    before = (kept / MANIFEST).stat().st_mtime_ns
    _copied(tmp_path / "m0", tmp_path / "m1")
    made.clear()
    _run(tmp_path, tmp_path / "m1")
    assert made == [] and json.loads((kept / MANIFEST).read_text())[DIGEST]["model"]
    assert (kept / MANIFEST).stat().st_mtime_ns == before  # still as old as it is, among the sets
    shutil.rmtree(tmp_path / "m0")
    _copied(tmp_path / "m1", tmp_path / "m2")
    made.clear()
    parents, said = _run(tmp_path, tmp_path / "m2")
    assert made == [] and parents == [kept, kept] and len(_reused(said)) == 1


def test_a_model_whose_files_were_written_again_alike_is_said_plainly(tmp_path: Path, tiny_sd1: Path,
                                                                      made: list[int]) -> None:
    """It was said to be made by the model at m0, 'whose weight files m0 holds byte for byte'."""
    model = _copied(tiny_sd1, tmp_path / "m0")
    _run(tmp_path, model)
    [kept] = _sets(tmp_path)
    weights = model / "unet" / "diffusion_pytorch_model.safetensors"
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))  # saved again, alike
    made.clear()
    _, said = _run(tmp_path, model)
    assert made == [] and _reused(said) == [
        f"concepts.0.class_dir: the class images in '{kept}' were made by the base model at {model} before its weight "
        "files were written again with the same bytes (their content hashes agree): reused, not made again"]
