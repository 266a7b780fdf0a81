"""Class images for prior preservation: reuse what exists, generate only what is missing.

Images the user put in a class folder are used as they are and never touched. Generated images
go to a sub-folder named after a hash of what made them (model, prompt, negative prompt,
resolution, seed, sampler settings), with a manifest: a re-run with the same settings reuses
them; changing any of them generates into a fresh sub-folder and leaves the old one alone.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from engine.data.images import list_images
from engine.events import Event, PhaseFinished, PhaseProgress, PhaseStarted

if TYPE_CHECKING:
    from engine.models.family import Family

MANIFEST = "manifest.json"
# (prompt, negative prompt, count) -> the pipeline's prompt arguments for a batch of ``count`` images.
PromptKwargs = Callable[[str, str, int], dict[str, Any]]
PHASE = "class_images"


@dataclass(frozen=True)
class ClassRequest:
    """What one concept needs."""

    concept: int
    folder: Path
    prompt: str
    negative_prompt: str
    count: int


def settings_of(request: ClassRequest, *, model: str, resolution: int, seed: int, steps: int, guidance: float) -> dict[str, Any]:
    return {
        "model": model,
        "prompt": request.prompt,
        "negative_prompt": request.negative_prompt,
        "resolution": resolution,
        "seed": seed,
        "steps": steps,
        "guidance_scale": guidance,
    }


def generated_folder(folder: Path, settings: dict[str, Any]) -> Path:
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]
    return Path(folder) / f"generated-{digest}"


def _read_manifest(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _write_manifest(folder: Path, settings: dict[str, Any], images: list[str]) -> None:
    tmp = folder / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps({**settings, "images": images}, indent=2), encoding="utf-8")
    os.replace(tmp, folder / MANIFEST)


def existing_class_images(request: ClassRequest, settings: dict[str, Any]) -> tuple[list[Path], list[Path]]:
    """(the user's own images, generated images recorded for these settings)."""
    own = list_images(request.folder) if request.folder.is_dir() else []
    gen_dir = generated_folder(request.folder, settings)
    manifest = _read_manifest(gen_dir)
    generated = [gen_dir / name for name in manifest.get("images", []) if (gen_dir / name).is_file()]
    return own, generated


def missing_count(request: ClassRequest, settings: dict[str, Any]) -> int:
    own, generated = existing_class_images(request, settings)
    return max(0, request.count - len(own) - len(generated))


def ensure_class_images(
    requests: list[ClassRequest],
    *,
    make_pipeline: Callable[[], Any],
    prompt_kwargs: PromptKwargs,
    model: str,
    resolution: int,
    seed: int,
    steps: int,
    guidance: float,
    batch_size: int,
    emit: Callable[[Event], None] = lambda e: None,
    should_stop: Callable[[], bool] = lambda: False,
    family: Family | None = None,
) -> dict[int, list[Path]]:
    """Class images per concept, generating the missing ones with ``make_pipeline()``, given each request's
    prompts as ``prompt_kwargs`` makes them (in a run: embeddings made before the pipeline, which then has
    no text encoders, so its ``family`` is given: see ``generate_images``)."""
    plans = []
    for request in requests:
        settings = settings_of(request, model=model, resolution=resolution, seed=seed, steps=steps, guidance=guidance)
        own, generated = existing_class_images(request, settings)
        plans.append((request, settings, own, generated))
    total_missing = sum(max(0, r.count - len(o) - len(g)) for r, _, o, g in plans)
    result: dict[int, list[Path]] = {}
    started = time.perf_counter()
    emit(PhaseStarted(phase=PHASE, total=total_missing, description=f"{total_missing} class images to generate"))
    pipe = make_pipeline() if total_missing else None
    done = 0
    for request, settings, own, generated in plans:
        missing = max(0, request.count - len(own) - len(generated))
        if missing:
            gen_dir = generated_folder(request.folder, settings)
            gen_dir.mkdir(parents=True, exist_ok=True)
            names = [p.name for p in generated]
            index = len(names)
            while missing > 0 and not should_stop():
                n = min(batch_size, missing)
                images = _generate(pipe, request, settings, first_index=index, count=n, prompt_kwargs=prompt_kwargs, family=family)
                for image in images:
                    name = f"class_{index:05d}.png"
                    tmp = gen_dir / f".{name}.tmp"
                    image.save(tmp, format="PNG")
                    os.replace(tmp, gen_dir / name)
                    names.append(name)
                    index += 1
                _write_manifest(gen_dir, settings, names)
                missing -= n
                done += n
                emit(PhaseProgress(phase=PHASE, done=done, total=total_missing))
            generated = [gen_dir / name for name in names]
        result[request.concept] = (own + generated)[: request.count]
    emit(PhaseFinished(phase=PHASE, seconds=time.perf_counter() - started))
    return result


def _generate(pipe: Any, request: ClassRequest, settings: dict[str, Any], *, first_index: int, count: int,
              prompt_kwargs: PromptKwargs, family: Family | None) -> list[Any]:
    import torch

    from engine.training.sampling import generate_images

    # One generator per image, seeded by its index, so an interrupted run continues identically.
    generators = [torch.Generator("cpu").manual_seed(settings["seed"] + first_index + i) for i in range(count)]
    return generate_images(
        pipe, family,
        **prompt_kwargs(request.prompt, request.negative_prompt, count),
        num_inference_steps=settings["steps"],
        guidance_scale=settings["guidance_scale"],
        height=settings["resolution"],
        width=settings["resolution"],
        generator=generators,
    )
