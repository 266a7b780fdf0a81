"""Class images for prior preservation: reuse what exists, generate only what is missing.

Images the user put in a class folder are used as they are and never touched. Generated images
go to a sub-folder named after a hash of what made them (the model as ``model_weights.model_identity`` tells it,
prompt, negative prompt, resolution, seed, sampler settings), with a manifest: a re-run with the
same settings reuses them; changing any of them generates into a fresh sub-folder and leaves the
old one alone. Image N is always made from seed + N, so a deleted image is made again as it was.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from engine.data.images import list_images
from engine.events import Event, PhaseFinished, PhaseProgress, PhaseStarted
from engine.support.generated_set import DIGEST, IMAGE_NAME, MANIFEST, generated_folder
from engine.support.json_file import read_json_object
from engine.training.class_folder_errors import said_of_class_folder
from engine.training.class_set_files import replace_whole, sweep_temporaries

if TYPE_CHECKING:
    from engine.models.family import Family
    from engine.training.model_weights import WeightDigests

# (prompt, negative prompt, count) -> the pipeline's prompt arguments for a batch of ``count`` images; negative prompt
# None: zeros (ClassRequest.zero_negative).
PromptKwargs = Callable[[str, str | None, int], dict[str, Any]]
PHASE = "class_images"


@dataclass(frozen=True)
class ClassRequest:
    """What one concept needs."""

    concept: int
    folder: Path
    prompt: str
    negative_prompt: str
    count: int
    # No negative prompt, for a model that conditions on zeros then (Family.zeroes_empty_negative): where it is false,
    # "" encoded, as every set was made before dbtui followed that (such a set keeps being reused: class_images_moved).
    zero_negative: bool = False
    # The base model as the manifest of the set reused records it (class_images_moved: the same weights, read from
    # elsewhere now or copied since).
    model_was: dict[str, Any] | None = None


def settings_of(request: ClassRequest, *, model: Any, resolution: int, seed: int, steps: int, guidance: float) -> dict[str, Any]:
    """Everything that makes a request's images (``model``: a model's name, or ``model_identity``)."""
    if request.model_was is not None and isinstance(model, dict):
        model = request.model_was
    settings = {
        "model": model,
        "prompt": request.prompt,
        "negative_prompt": request.negative_prompt,
        "resolution": resolution,
        "seed": seed,
        "steps": steps,
        "guidance_scale": guidance,
    }
    # Only then: a set made with "" encoded keeps the name it always had.
    return {**settings, NEGATIVE_EMBEDS: "zeros"} if request.zero_negative else settings


NEGATIVE_EMBEDS = "negative_prompt_embeds"


def _write_manifest(folder: Path, settings: dict[str, Any], images: list[str], digest: Any = None) -> None:
    recorded = {**settings, "images": images, **({DIGEST: digest} if digest else {})}
    replace_whole(folder / MANIFEST, lambda tmp: tmp.write_text(json.dumps(recorded, indent=2), encoding="utf-8"))


def record_digest(gen_dir: Path, name: str, digest: str) -> None:
    """Add to the manifest of a set made before sets recorded hashes the hash of its model's ``name`` files (found where
    they still stood as the set describes them), so that no later run hashes that model again. The manifest keeps its
    time, which orders the sets (``newest_sets``); a folder this run cannot write is hashed again next time."""
    path = gen_dir / MANIFEST
    manifest = read_json_object(path)
    held = manifest.get(DIGEST)
    held = held if isinstance(held, dict) else {}
    if not manifest or name in held:
        return
    recorded = {**manifest, DIGEST: {**held, name: digest}}

    def write(tmp: Path) -> None:
        times = path.stat()
        tmp.write_text(json.dumps(recorded, indent=2), encoding="utf-8")
        os.utime(tmp, ns=(times.st_atime_ns, times.st_mtime_ns))

    with contextlib.suppress(OSError):
        replace_whole(path, write)


def _listed(gen_dir: Path, manifest: dict[str, Any]) -> list[Path]:
    """The images ``manifest`` lists that are in ``gen_dir``, each once. An entry not named as ``_name`` names (a
    number, '../x.png', a sub-folder's image) was written by hand or damaged: taken as not generated, never read from
    outside the folder."""
    names = manifest.get("images")
    if not isinstance(names, list):
        return []
    kept = dict.fromkeys(name for name in names if isinstance(name, str) and IMAGE_NAME.fullmatch(name))
    return [gen_dir / name for name in kept if (gen_dir / name).is_file()]


def existing_class_images(request: ClassRequest, settings: dict[str, Any]) -> tuple[list[Path], list[Path]]:
    """(the user's own images, generated images recorded for these settings)."""
    own = list_images(request.folder) if request.folder.is_dir() else []
    gen_dir = generated_folder(request.folder, settings)
    return own, _listed(gen_dir, read_json_object(gen_dir / MANIFEST))


def generated_earlier(folder: Path, known: dict[str, Any],
                      also: Callable[[dict[str, Any]], bool] = lambda manifest: True) -> tuple[Path | None, int]:
    """(the generated set, its image count) that a run would likely reuse from ``folder``: the newest whose manifest
    agrees with ``known``, settings as far as they are known without the model loaded (e.g. without its files and its
    family's usual guidance), and passes ``also`` (asked of the newest first: it may hash a model); (None, 0) when none
    does."""
    for gen_dir, manifest in newest_sets(folder):
        if _agrees(manifest, known) and also(manifest):
            return gen_dir, len(_listed(gen_dir, manifest))
    return None, 0


def newest_sets(folder: Path) -> list[tuple[Path, dict[str, Any]]]:
    """(each generated set in ``folder``, its manifest), the newest first; none without a manifest."""
    try:
        sets = list(Path(folder).glob("generated-*"))
    except PermissionError:  # a folder above it lets this user not in (glob passes over one it cannot list): none to reuse
        return []
    found = [(gen_dir, read_json_object(gen_dir / MANIFEST)) for gen_dir in sets]
    made = [(gen_dir, manifest, (gen_dir / MANIFEST).stat().st_mtime_ns) for gen_dir, manifest in found if manifest]
    return [(gen_dir, manifest) for gen_dir, manifest, _ in sorted(made, key=lambda held: -held[2])]


def _agrees(recorded: dict[str, Any], known: dict[str, Any]) -> bool:
    """Every key of ``known`` holds its value in ``recorded`` (a dict value: its own keys, and only those)."""
    for key, value in known.items():
        held = recorded.get(key)
        if isinstance(value, dict):
            if not isinstance(held, dict) or not _agrees(held, value):
                return False
        elif held != value:
            return False
    return True


def missing_count(request: ClassRequest, settings: dict[str, Any]) -> int:
    own, generated = existing_class_images(request, settings)
    return max(0, request.count - len(own) - len(generated))


def _plans(requests: list[ClassRequest], **settings: Any) -> list[tuple[ClassRequest, dict[str, Any]]]:
    return [(request, settings_of(request, **settings)) for request in requests]


def _needed(plans: list[tuple[ClassRequest, dict[str, Any]]]) -> tuple[dict[Path, int], dict[Path, ClassRequest]]:
    """The images to generate in each generated folder, and the first request for it. Concepts that share a class folder
    and its settings share its images: the largest count is made, once. The folder as the file system finds it ('class'
    and '/abs/class' or a link to it are one folder, counted once)."""
    needed: dict[Path, int] = {}
    first: dict[Path, ClassRequest] = {}
    for request, settings in plans:
        key = generated_folder(request.folder, settings).resolve()
        needed[key] = max(needed.get(key, 0), missing_count(request, settings))
        first.setdefault(key, request)
    return needed, first


def ensure_class_images(
    requests: list[ClassRequest],
    *,
    make_pipeline: Callable[[], Any],
    prompt_kwargs: PromptKwargs,
    model: Any,
    resolution: int,
    seed: int,
    steps: int,
    guidance: float,
    batch_size: int,
    emit: Callable[[Event], None] = lambda e: None,
    should_stop: Callable[[], bool] = lambda: False,
    family: Family | None = None,
    generates: bool = True,
    weights: WeightDigests | None = None,
) -> dict[int, list[Path]]:
    """Class images per concept, generating the missing ones with ``make_pipeline()``, given each request's
    prompts as ``prompt_kwargs`` makes them (in a run: embeddings made before the pipeline, which then has
    no text encoders, so its ``family`` is given: see ``generate_images``). A set's manifest records ``weights``' hash of
    the files the model loads (the set's own, where it has one), hashed in a thread while the images are made.
    ``generates`` false: ``make_pipeline`` only says why images are missing (a process that reads what the main
    process made), so no folder is made here."""
    plans = _plans(requests, model=model, resolution=resolution, seed=seed, steps=steps, guidance=guidance)
    needed, first = _needed(plans)
    total_missing = sum(needed.values())
    started = time.perf_counter()
    emit(PhaseStarted(phase=PHASE, total=total_missing,
                      description=f"{total_missing} class images to generate" if total_missing else "no class images to generate"))
    made: list[Path] = []  # the sets this run begins: a stop or failure before their first image removes them again
    try:
        for gen_dir, request in first.items():
            if needed[gen_dir] and generates:
                # Before the model is built: a class folder that cannot be written is said in seconds, not after the load.
                with said_of_class_folder(request.concept, request.folder):
                    if not gen_dir.exists():
                        made.append(gen_dir)
                    gen_dir.mkdir(parents=True, exist_ok=True)
                    sweep_temporaries(gen_dir)
        pipe = make_pipeline() if total_missing else None
        if total_missing and weights is not None:
            weights.start(should_stop)  # while the GPU generates
        result, stopped = _generate_missing(plans, pipe, weights, prompt_kwargs=prompt_kwargs, family=family,
                                            batch_size=batch_size, emit=emit, should_stop=should_stop, total=total_missing)
    finally:
        if weights is not None:
            weights.stop()  # a run that failed meanwhile hashes no more
        for gen_dir in made:  # an empty set, no manifest, left for good once the class settings change
            with contextlib.suppress(OSError):  # rmdir: never a folder holding anything
                gen_dir.rmdir()
    emit(PhaseFinished(phase=PHASE, seconds=time.perf_counter() - started, stopped=stopped))
    return result


def _generate_missing(plans: list[tuple[ClassRequest, dict[str, Any]]], pipe: Any, weights: WeightDigests | None, *,
                      prompt_kwargs: PromptKwargs, family: Family | None, batch_size: int, emit: Callable[[Event], None],
                      should_stop: Callable[[], bool], total: int) -> tuple[dict[int, list[Path]], bool]:
    """``ensure_class_images``' images per concept, and whether it was stopped. Each set's manifest gets the model's
    hash as soon as the thread has it, else once the images are made."""
    result: dict[int, list[Path]] = {}
    unhashed: dict[Path, tuple[ClassRequest, dict[str, Any], list[str]]] = {}
    done, stopped = 0, False
    for request, settings in plans:
        own, generated = existing_class_images(request, settings)  # again: an earlier concept may have made them
        missing = max(0, request.count - len(own) - len(generated))
        if missing:
            gen_dir = generated_folder(request.folder, settings)
            names = [p.name for p in generated]
            digest = read_json_object(gen_dir / MANIFEST).get(DIGEST)
            for batch in _batches(_free_indices(names, missing), batch_size):
                if should_stop():
                    stopped = True
                    break
                images = _generate(pipe, request, settings, indices=batch, prompt_kwargs=prompt_kwargs, family=family)
                with said_of_class_folder(request.concept, request.folder):
                    for index, image in zip(batch, images):
                        name = _name(index)
                        replace_whole(gen_dir / name, lambda tmp, image=image: image.save(tmp, format="PNG"))
                        names.append(name)
                    names.sort()
                    if digest is None and weights is not None:
                        digest = weights.ready()
                    _write_manifest(gen_dir, settings, names, digest)
                unhashed.pop(gen_dir, None)
                if digest is None and weights is not None:
                    unhashed[gen_dir] = (request, settings, list(names))
                done += len(batch)
                emit(PhaseProgress(phase=PHASE, done=done, total=total))
            generated = [gen_dir / name for name in names]
        result[request.concept] = (own + generated)[: request.count]
    hashed = weights.now() if unhashed and weights is not None and not stopped else None
    for gen_dir, (request, settings, names) in unhashed.items() if hashed else ():
        with said_of_class_folder(request.concept, request.folder):
            _write_manifest(gen_dir, settings, names, hashed)
    return result, stopped


def _name(index: int) -> str:
    return f"class_{index:05d}.png"


def _free_indices(names: list[str], count: int) -> list[int]:
    """The ``count`` lowest image numbers the manifest does not list: a deleted image is made again under its
    own number (from its own seed), never over another."""
    taken = set(names)
    free: list[int] = []
    index = 0
    while len(free) < count:
        if _name(index) not in taken:
            free.append(index)
        index += 1
    return free


def _batches(indices: list[int], size: int) -> list[list[int]]:
    return [indices[i:i + size] for i in range(0, len(indices), size)]


def _generate(pipe: Any, request: ClassRequest, settings: dict[str, Any], *, indices: list[int],
              prompt_kwargs: PromptKwargs, family: Family | None) -> list[Any]:
    import torch

    from engine.training.sampling import generate_images

    # One generator per image, seeded by its index, so an interrupted run continues identically.
    generators = [torch.Generator("cpu").manual_seed(settings["seed"] + index) for index in indices]
    return generate_images(
        pipe, family,
        **prompt_kwargs(request.prompt, None if request.zero_negative else request.negative_prompt, len(indices)),
        num_inference_steps=settings["steps"],
        guidance_scale=settings["guidance_scale"],
        height=settings["resolution"],
        width=settings["resolution"],
        generator=generators,
    )
