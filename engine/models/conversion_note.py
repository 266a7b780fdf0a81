"""The note a folder converted from a single file keeps: which file, as it stood, and what it became.

Training's own conversion (loading.py) and the wizard's (engine/model_import.py) both write it, so that either can
tell a folder that already holds a file's conversion from one that holds something else.
"""

from __future__ import annotations

import json
import os
from contextlib import suppress
from pathlib import Path

from engine.errors import DbtuiError
from engine.models.content_sample import content_sample
from engine.support.json_file import read_json_object

CONVERTED_FROM = "dbtui-converted-from.json"  # in a folder converted from a single file: which file, as it stood


def source_identity(path: Path) -> dict[str, object]:
    """What a conversion of ``path`` depends on: the file, the same-named .yaml beside it, the converter's version."""
    from engine.convert.to_diffusers import CONVERTER_VERSION

    sidecar = path.with_suffix(".yaml")
    return {**file_identity(path), "sidecar": file_identity(sidecar) if sidecar.is_file() else None,
            "converter": CONVERTER_VERSION}


def conversion_source(path: Path) -> dict[str, object]:
    """``source_identity`` and a sample of the file's bytes: what a conversion notes of its file, and is reused for."""
    return {**source_identity(path), "sample": content_sample(path)}


def noted_as(folder: Path, made_from: dict[str, object], wanted: dict[str, object]) -> bool:
    """Whether the note ``made_from`` of ``folder`` says what ``wanted`` (``conversion_source`` and more) does. A note
    without a sample, of the file or of a Flux part file (of before samples were noted), is taken on the rest and given
    the sample: each user's cached conversion was else converted again, for minutes."""
    if not all(noted_less_samples(made_from.get(key), value) for key, value in wanted.items()
               if key != "sample" or "sample" in made_from):
        return False
    sampled = _sampled(made_from, wanted)
    if sampled != made_from:
        _rewrite_note(folder, sampled)
    return True


def noted_less_samples(noted: object, wanted: object) -> bool:
    """``noted`` is ``wanted``, less any sample that it was noted without, at every depth (a Flux part file's, in
    ``flux_parts``)."""
    if not isinstance(noted, dict) or not isinstance(wanted, dict):
        return noted == wanted
    keys = wanted.keys() - ({"sample"} if "sample" not in noted else set())
    return noted.keys() == keys and all(noted_less_samples(noted[key], wanted[key]) for key in keys)


def _sampled(noted: dict[str, object], wanted: dict[str, object]) -> dict[str, object]:
    """``noted`` given each sample of ``wanted`` that it lacks, at every depth."""
    deeper = {key: _sampled(value, wanted[key]) if isinstance(value, dict) and isinstance(wanted.get(key), dict)
              else value for key, value in noted.items()}
    return {**deeper, **({"sample": wanted["sample"]} if "sample" in wanted and "sample" not in noted else {})}


def _rewrite_note(folder: Path, note: dict[str, object]) -> None:
    tmp = folder / f".{CONVERTED_FROM}.{os.getpid()}"
    try:
        tmp.write_text(json.dumps(note), encoding="utf-8")
        os.replace(tmp, folder / CONVERTED_FROM)
    except OSError:  # a folder not ours to write (shared, read-only): its note is read as it is, and that is all
        with suppress(OSError):
            tmp.unlink(missing_ok=True)


def what_it_became(folder: Path) -> dict[str, object]:
    """Its family (None where not told: the note is written still, or the folder would pass for one converted before
    notes were, never checked again) and what it predicts."""
    from engine.models.registry import family_of

    scheduler = read_json_object(folder / "scheduler" / "scheduler_config.json")
    try:
        family: str | None = family_of(folder).id
    except (DbtuiError, OSError, ValueError, TypeError, AttributeError):  # a model_index.json not as diffusers writes
        family = None
    return {"family": family, "prediction_type": scheduler.get("prediction_type", "epsilon")}


def read_note(path: Path) -> dict[str, object] | None:
    try:
        note = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return note if isinstance(note, dict) else None


def note_conversion(folder: Path, source: dict[str, object], extra: dict[str, object] | None = None) -> None:
    """Write the note into ``folder``, just converted from the file whose ``source_identity`` was ``source`` when the
    conversion began: taken after, it would describe a file replaced meanwhile, whose conversion this is not.
    ``extra``: more that the conversion depended on, taken before it too."""
    note = {**source, **(extra or {}), **what_it_became(folder)}
    (folder / CONVERTED_FROM).write_text(json.dumps(note), encoding="utf-8")


def holds_conversion_of(folder: Path, path: Path, extra: dict[str, object] | None = None) -> bool:
    """Whether ``folder`` is a diffusers folder this converter made from ``path`` as it stands now (and from ``extra``,
    where the note has it: a note without a key was made with none of it)."""
    if not (folder / "model_index.json").is_file():
        return False
    made_from = read_note(folder / CONVERTED_FROM)
    return (made_from is not None and {"family", "prediction_type"} <= made_from.keys()
            and noted_as(folder, made_from, {**conversion_source(path), **(extra or {})}))


def file_identity(path: Path) -> dict[str, object]:
    """The file at ``path`` as it stands: where it resolves to, its size and its modification time."""
    stat = path.stat()
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def sampled_identity(path: Path) -> dict[str, object]:
    """``file_identity`` and a sample of the file's bytes: a Flux part file as a conversion notes it. A Flux VAE is
    always the same size, so another copied over it with its time kept (``cp -p``) passed for it on the rest."""
    return {**file_identity(path), "sample": content_sample(path)}
