"""The dataset doctor's and prepare's settings as a profile gives them, and the check of one profile concept."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.dataset.checks import check_dataset
from engine.dataset.report import DatasetReport
from engine.dataset.tokens import TextReader
from engine.errors import DbtuiError
from engine.events import Event
from engine.training.model_weights import KnownHashes  # the UI's too: it holds one for its checks

if TYPE_CHECKING:
    from engine.models.family import Family


def concept_settings(profile: Any, concept_index: int = 0, tokenizer: Any = None,
                     readers: list[TextReader] | None = None, emit: Callable[[Event], None] | None = None,
                     hashes: KnownHashes | None = None) -> dict[str, Any]:
    """The ``check_dataset`` arguments a profile gives for one concept (its folder included).

    Without a tokenizer, the model's own are used when it is on this machine (a folder or a
    built-in): all that its family reads captions with; a hub id is not downloaded just to check a
    dataset. Given ``readers`` (``load_readers``) are used as they are, a given tokenizer as CLIP. ``emit`` is shown
    the hashing of the model's weights where finding its class images needs it; ``hashes`` keeps them for the checks of
    the other concepts, which then hash no model again.
    """
    from engine.builtin import resolve_dir
    from engine.profile.identifier import guess_identifier

    concept = profile.concepts[concept_index]
    if readers is None:
        readers = [TextReader(tokenizer)] if tokenizer is not None else local_readers(profile.model)
    class_dir = resolve_dir(concept.class_dir) if concept.class_dir else None
    return {
        "folder": resolve_dir(concept.instance_dir),
        "instance_dir": True,
        **_dataset_settings(profile),
        "caption_mode": concept.caption_mode,
        "instance_prompt": concept.instance_prompt,
        "identifier": guess_identifier(concept.instance_prompt, concept.class_prompt),
        "tokenizer": readers[0].tokenizer if readers else None,
        "readers": readers,
        "class_dir": class_dir,
        # Sub-folders that are other concepts' instance or class folders hold no unused images of this one.
        "concept_folders": tuple(Path(resolve_dir(place)) for other in profile.concepts if other is not concept
                                 for place in (other.instance_dir, other.class_dir) if place),
        "num_class_images": concept.num_class_images if profile.prior.enabled else 0,
        "class_generated": (_class_generated(profile, concept_index, Path(class_dir), emit or (lambda e: None), hashes)
                            if class_dir and profile.prior.enabled else (None, 0)),
    }


def class_sharers(profile: Any, concept_index: int) -> tuple[int, ...]:
    """The concepts (``concept_index`` among them) whose class images are one set: one class folder (as the file system
    finds it) and one class prompt and negative prompt (where the family reads one), the rest of what makes them being
    the profile's. A run makes the most of their num_class_images, once (class_images._needed); () where the concept
    shares its set with none."""
    mine = _class_set(profile.concepts[concept_index]) if profile.prior.enabled else None
    if mine is None:
        return ()
    keys = {index: key for index, concept in enumerate(profile.concepts)
            if (key := _class_set(concept)) is not None and key[:2] == mine[:2]}
    # A run gives "" for the negative prompt where the family reads none (class_generation.run_class_images): then
    # concepts that differ only in it are one set. The family is looked up only where they differ; one the model's files
    # do not tell (a hub id not downloaded) is taken to read it, as most do.
    if any(key != mine for key in keys.values()):
        family = _family(profile.model.pretrained)
        if family is None or family.takes_negative_prompt:
            keys = {index: key for index, key in keys.items() if key == mine}
    return tuple(keys) if len(keys) > 1 else ()


def shared_class_set(profile: Any, concept_index: int) -> tuple[tuple[int, ...], int] | None:
    """(``class_sharers``, the most of their num_class_images: what the run wants of the set); None where the concept
    shares its set with none."""
    sharers = class_sharers(profile, concept_index)
    return (sharers, max(profile.concepts[i].num_class_images for i in sharers)) if sharers else None


def to_generate_said(summary: Any, shared: tuple[tuple[int, ...], int] | None, first_number: int) -> str:
    """The class images to generate of a concept, as a check says it: its own count, or for a class set it shares
    (``shared_class_set``) the set's, where each concept's report counts its own number. ``first_number``: how the
    caller numbers concept 0."""
    if shared is None:
        return f"{summary.class_images_to_generate} to generate"
    concepts, most = shared
    count = max(0, most - (summary.class_images_present or 0) - summary.class_images_generated)
    numbers = [str(index + first_number) for index in concepts]
    return (f"{count} to generate in all for concepts {', '.join(numbers[:-1])} and {numbers[-1]} (one class folder "
            "and prompt: the run makes the most that any of them wants, once)")


def unusable_said(summary: Any) -> str:
    """The class images present that a run cannot read, as a check says it after their count: a run refuses to start on
    them rather than generating others in their place (runs.inputs_check); "" where there are none."""
    count = summary.class_images_with_errors
    return (f" ({count} of them unusable: a run refuses to start until each is fixed, or moved out for dbtui to generate "
            "one in its place; see their errors)" if count else "")


def _class_set(concept: Any) -> tuple[str, str, str] | None:
    from engine.builtin import resolve_dir

    if not concept.class_dir:
        return None
    try:
        folder = str(Path(resolve_dir(concept.class_dir)).resolve())
    except (DbtuiError, OSError):  # a built-in the cache cannot hold: its name stands for it
        folder = concept.class_dir
    return folder, concept.class_prompt or "", concept.class_negative_prompt


def _class_generated(profile: Any, concept_index: int, class_dir: Path, emit: Callable[[Event], None],
                     hashes: KnownHashes | None) -> tuple[Path | None, int]:
    """The images a run generated earlier into ``class_dir`` for this concept, which the next run reuses: found by
    the settings they were made with, as far as the profile tells them without the model loaded (its files are
    compared only to find a set it made at another path, and the guidance and negative prompt not where the family is
    not told without it)."""
    from engine.training.class_images import ClassRequest, settings_of
    from engine.training.class_images_moved import generated_earlier_elsewhere
    from engine.training.model_weights import model_settings, weights_here

    concept, prior = profile.concepts[concept_index], profile.prior
    request = ClassRequest(concept_index, class_dir, concept.class_prompt or "", concept.class_negative_prompt,
                           concept.num_class_images)
    known = settings_of(request, model=model_settings(profile.model), resolution=profile.dataset.resolution,
                        seed=profile.training.seed, steps=prior.steps, guidance=prior.guidance_scale or 0.0)
    family = _family(profile.model.pretrained)
    if prior.guidance_scale is None:  # the family's usual guidance
        if family is None:
            del known["guidance_scale"]
        else:
            known["guidance_scale"] = family.usual_guidance
    here = weights_here(profile.model, emit, hashes)  # once: both searches below may hash the model
    if family is None:
        del known["negative_prompt"]  # a run gives "" for it where the family reads none
    elif not family.takes_negative_prompt:
        known["negative_prompt"] = ""
        found = generated_earlier_elsewhere(class_dir, known, profile.model, here)
        # A run reuses a set kept by another negative prompt where none is kept by "" (class_images_moved.reused_sets).
        if found[0] is None:
            del known["negative_prompt"]
            return generated_earlier_elsewhere(class_dir, known, profile.model, here)
        return found
    return generated_earlier_elsewhere(class_dir, known, profile.model, here)


def _family(source: str) -> Family | None:
    """The model's family where its files tell it (a built-in, a local folder, a hub id in the Hugging Face cache); None
    where they do not (a hub id not downloaded). A single file's is read once while it stays the same size and time:
    an old pickle .ckpt is unpickled to be told, and the wizard asks again on its UI thread at each class-count line
    (the dataset check's worker asks first)."""
    from engine.profile.model_source import local_path, model_kind

    if model_kind(source) == "single-file":
        try:
            stat = local_path(source).stat()
        except OSError:
            return _read_family(source)
        return _file_family(source, stat.st_size, stat.st_mtime_ns)
    return _read_family(source)


@functools.lru_cache(maxsize=8)
def _file_family(source: str, size: int, mtime_ns: int) -> Family | None:
    """``_read_family`` of a single file; its ``size`` and ``mtime_ns`` key the cache only: a file rewritten is read
    again."""
    return _read_family(source)


def _read_family(source: str) -> Family | None:
    from engine.errors import DbtuiError
    from engine.model_info import describe_model, family_from_files
    from engine.models.registry import family_named

    try:
        described = describe_model(source)
        # describe_model leaves a hub id's family to the run, even where its model_index.json is in the cache.
        return family_named(described.family_id or (family_from_files(source) if described.kind == "hub" else None))
    except (DbtuiError, OSError, KeyError):  # KeyError: no family (None) or one not known here
        return None


def prepare_settings(profile: Any) -> dict[str, Any]:
    """The ``prepare_dataset`` arguments a profile gives (the folders are the caller's)."""
    return {**_dataset_settings(profile), "center_crop": profile.dataset.center_crop}


def _dataset_settings(profile: Any) -> dict[str, Any]:
    """What checking and preparing both take from the profile: the same size, buckets and captions as training."""
    from engine.model_info import size_multiple

    dataset = profile.dataset
    return {
        "resolution": dataset.resolution,
        "caption_extension": dataset.caption_extension,
        "bucketing": dataset.bucketing,
        "buckets": [tuple(b) for b in dataset.buckets] if dataset.buckets else None,
        "size_multiple": size_multiple(profile.model.pretrained),
    }


def check_concept(profile: Any, concept_index: int = 0, tokenizer: Any = None,
                  emit: Callable[[Event], None] | None = None, workers: int | None = None,
                  hashes: KnownHashes | None = None) -> DatasetReport:
    """``check_dataset`` with a profile's settings for one concept (see ``concept_settings``)."""
    settings = concept_settings(profile, concept_index, tokenizer, emit=emit, hashes=hashes)
    return check_dataset(settings.pop("folder"), **settings, emit=emit, workers=workers)


def local_readers(model: Any) -> list[TextReader] | None:
    """The profile's model's tokenizers when they are on this machine (model.tokenizer replacing the first)."""
    from engine.dataset.tokens import load_readers, load_tokenizer

    read = local_reader_source(model)
    if read is None:
        return None
    tokenizer = model.tokenizer if on_this_machine(model.tokenizer) else None
    return load_readers(read, tokenizer) if read == model.pretrained else [TextReader(load_tokenizer(tokenizer))]


def local_reader_source(model: Any) -> str | None:
    """What ``local_readers`` reads the tokenizers from: the model where it is on this machine, else its local
    model.tokenizer; None where neither is (a hub id is not downloaded to check a dataset)."""
    if on_this_machine(model.pretrained):
        return model.pretrained
    return model.tokenizer if on_this_machine(model.tokenizer) else None


def on_this_machine(source: str | None) -> bool:
    """Whether a model or tokenizer source is read here (a built-in or a path), not from the hub."""
    from engine.builtin import is_builtin

    return bool(source) and (is_builtin(source) or Path(source).exists())
