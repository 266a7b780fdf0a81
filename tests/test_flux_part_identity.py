"""A Flux conversion's part files (VAE, CLIP-L, T5) are known by a sample of their bytes too: a Flux VAE is always the
same size, so another copied over it with its time kept (``cp -p``) passed for it, and the old conversion was reused.
A note written before parts held a sample is taken on its old fields and given the samples, not converted again."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

from engine.model_import import conversion_target, import_model
from engine.models.loading import CONVERTED_FROM
from tests.test_conversion_identity import conversions  # noqa: F401  (the fixture)


def _vae(seed: int) -> bytes:
    return random.Random(seed).randbytes(200_000)  # every Flux VAE is one size


def _typed(tmp_path: Path) -> tuple[str, dict[str, object]]:
    source = tmp_path / "m.safetensors"
    source.write_bytes(b"transformer")
    (tmp_path / "ae.safetensors").write_bytes(_vae(1))
    return str(source), {"components": "black-forest-labs/FLUX.1-dev",
                         "part_files": {"vae": str(tmp_path / "ae.safetensors")}}


def test_another_vae_copied_over_with_its_time_kept_is_another_model(conversions: list[Path], tmp_path: Path) -> None:
    source, typed = _typed(tmp_path)
    folder = tmp_path / "models" / "m-diffusers"
    import_model(source, folder, **typed)
    assert conversion_target(source, **typed, into=folder).holds_it
    vae = tmp_path / "ae.safetensors"
    before = vae.stat()
    vae.write_bytes(_vae(2))
    os.utime(vae, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert not conversion_target(source, **typed, into=folder).holds_it
    assert conversion_target(source, tmp_path / "models", **typed).folder == tmp_path / "models" / "m-diffusers-2"


def test_a_note_of_parts_before_samples_is_reused_and_given_their_samples(conversions: list[Path],
                                                                        tmp_path: Path) -> None:
    """Every user's Flux conversion made from part files would else be converted again, for many minutes."""
    source, typed = _typed(tmp_path)
    folder = import_model(source, tmp_path / "models" / "m-diffusers", **typed)
    note = folder / CONVERTED_FROM
    written = json.loads(note.read_text())
    assert "sample" in written["flux_parts"]["vae"]
    old = {**written, "flux_parts": {**written["flux_parts"],
                                     "vae": {k: v for k, v in written["flux_parts"]["vae"].items() if k != "sample"}}}
    note.write_text(json.dumps(old))
    assert conversion_target(source, **typed, into=folder).holds_it
    assert import_model(source, folder, **typed) == folder and len(conversions) == 1
    assert json.loads(note.read_text()) == written


def test_class_images_made_before_part_samples_are_still_found(conversions: list[Path], tmp_path: Path) -> None:
    """A Flux conversion's class images, made before its parts held samples, were known by its note without samples:
    the note given the parts' samples then named another model, and minutes of Flux class images were made again."""
    from types import SimpleNamespace

    from engine.training.model_weights import described_before_samples, model_identity

    source, typed = _typed(tmp_path)
    folder = import_model(source, tmp_path / "models" / "m-diffusers", **typed)
    note = folder / CONVERTED_FROM
    written = json.loads(note.read_text())
    parts = {name: {k: v for k, v in part.items() if k != "sample"} if isinstance(part, dict) else part
             for name, part in written["flux_parts"].items()}
    old = {**written, "flux_parts": parts}
    note.write_text(json.dumps({k: v for k, v in old.items() if k != "sample"}))
    model = SimpleNamespace(pretrained=str(folder), revision=None, vae=None, quantize=None)
    images_known_by = model_identity(model, folder)  # class images named their model by the note less its sample
    note.write_text(json.dumps(old))
    assert conversion_target(source, **typed, into=folder).holds_it and json.loads(note.read_text()) == written
    assert described_before_samples(images_known_by, model_identity(model, folder))
