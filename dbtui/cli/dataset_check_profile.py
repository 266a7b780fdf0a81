"""``dbtui dataset check --profile``: which concepts are checked, each with the settings the profile gives it."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any


def loaded_readers(console: Any, model: str | None, profile_model: Any = None) -> Any:
    """The tokenizers the check counts with: ``model``'s (--model), else the profile's model's when it is on this
    machine (None when it is not). Shown as a phase: importing transformers and reading them took seconds in silence."""
    from engine.dataset import load_readers
    from engine.dataset.profile_settings import local_reader_source, local_readers
    from engine.events import PhaseFinished, PhaseStarted

    from dbtui.console import PhaseDisplay

    # What is read: a hub-id model's local model.tokenizer alone was said as the hub id, as if that were downloaded.
    read = model or local_reader_source(profile_model)
    if not read:
        return None  # a hub id is not downloaded to check a dataset
    started = time.monotonic()
    with PhaseDisplay(console=console) as progress:
        progress(PhaseStarted(phase="load_tokenizer", description=str(read)))
        readers = load_readers(model) if model else local_readers(profile_model)
        progress(PhaseFinished(phase="load_tokenizer", seconds=time.monotonic() - started))
    return readers


def checked_concepts(profile: Any, folder: str | None, concept: int | None) -> list[int]:
    """The concepts checked: ``concept``, else every one, else (FOLDER given) the one whose folder FOLDER is. Chosen
    before any tokenizer is read, so a wrong --concept is refused at once. FOLDER with no --concept takes the settings
    of the concept whose folder it is: checked under every concept's caption mode and prompt, one folder was reported
    once clean and once full of errors, neither saying whose settings judged it."""
    from engine.builtin import resolve_dir
    from engine.dataset import DatasetError

    count = len(profile.concepts)
    if concept is not None and not 0 <= concept < count:
        raise DatasetError(f"--concept {concept}: the profile has {count} concept(s), numbered 0 to {count - 1}")
    indices = [concept] if concept is not None else list(range(count))
    if folder and len(indices) > 1:
        here = os.path.realpath(folder)
        indices = [index for index in indices
                   if os.path.realpath(resolve_dir(profile.concepts[index].instance_dir)) == here]
        if len(indices) != 1:
            raise DatasetError(f"{folder}: the profile has {count} concepts, each with its own caption mode, prompt "
                               f"and class images; add --concept N (0 to {count - 1}) to say whose settings check it")
    return indices


def profile_checks(console: Any, profile: Any, folder: str | None, indices: list[int],
                   readers: Any) -> list[tuple[str | None, str | None, dict[str, Any]]]:
    """(the profile's key for the folder checked, None for FOLDER; a heading naming the concept where several are
    checked; ``check_dataset``'s arguments) for each of ``indices`` (``checked_concepts``). The hashing of the model's
    weights that finding its class images may need is shown, as the tokenizers' load is, and done once for all of them:
    concepts whose class folders hold sets of a copied model hashed it again for each (a minute for a model of gigabytes)."""
    from engine.dataset import concept_settings
    from engine.dataset.profile_settings import KnownHashes

    from dbtui.console import PhaseDisplay

    checks: list[tuple[str | None, str | None, dict[str, Any]]] = []
    hashes: KnownHashes = {}
    for index in indices:
        with PhaseDisplay(console=console) as progress:
            settings = concept_settings(profile, index, readers=readers, emit=progress, hashes=hashes)
        heading = f"concepts.{index}: {settings['folder']}" if len(indices) > 1 else None
        if folder:
            settings["folder"] = folder
        checks.append((None if folder else f"concepts.{index}.instance_dir", heading, settings))
    return checks


def read_from(folder: str) -> str:
    """Where a profile's relative ``folder`` that is not there was looked for, as validate says it: from the working
    directory, not the profile's folder."""
    from engine.support.relative_paths import where_read

    try:
        there = Path(folder).exists()
    except PermissionError:  # behind a folder that lets this user not in (3.11 raises): its refusal names the chmod
        return ""
    return "" if there else where_read(folder)


def missing_folders(profile: Any, indices: list[int]) -> list[str]:
    """``concepts.N.instance_dir: why`` for each of ``indices``' instance_dir that is not there or is a file, saying
    where a relative one was looked for."""
    from engine.builtin import resolve_dir
    from engine.dataset import DatasetError
    from engine.dataset.files import checked_folder

    said = []
    for index in indices:
        folder = resolve_dir(profile.concepts[index].instance_dir)
        try:
            checked_folder(folder)
        except DatasetError as error:
            said.append(f"concepts.{index}.instance_dir: {error}{read_from(folder)}")
    return said


def refuse_missing_folders(profile: Any, indices: list[int]) -> list[str]:
    """A DatasetError naming each of ``indices``' instance_dir that is not there or is a file, where none is left to
    check, before any tokenizer is read: the check read them first (8-10 s for SDXL's two) only to say the folder was
    missing. Where another concept's folder is there, its report is worth the read: those missing are returned, to be
    named before the read (the user need not wait for it to learn of them), and again as the check's error."""
    from engine.dataset import DatasetError

    said = missing_folders(profile, indices)
    if len(said) == len(indices):
        raise DatasetError("\n".join(said))
    return said


def run_instance_images(profile: Any, folder: str | None, indices: list[int]) -> tuple[int, int] | None:
    """(concepts, instance images of them all) for a profile of several that leaves the run's length to the rule of
    100 per instance image, which its run counts of every concept's images together; None otherwise, or where a folder
    cannot be listed (its concept's check says why). A FOLDER (``folder``) checked as concept ``indices[0]`` counts in
    that concept's folder's place: the profile's own was counted beneath the report of FOLDER's images."""
    from engine.builtin import resolve_dir
    from engine.data.images import DataError, list_images

    training = profile.training
    if len(profile.concepts) < 2 or training.max_train_steps or training.num_train_epochs:
        return None
    folders = [resolve_dir(concept.instance_dir) for concept in profile.concepts]
    if folder:  # checked_concepts gave it one concept
        folders[indices[0]] = folder
    try:
        images = sum(len(list_images(Path(each))) for each in folders)
    except (DataError, OSError):
        return None
    return len(profile.concepts), images
