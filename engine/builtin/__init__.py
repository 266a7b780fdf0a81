"""``builtin:`` names: the tiny demo models and dataset, built on first use into a cache.

Lets the example profile and ``dbtui demo`` run on any machine with no downloads.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from engine.errors import DbtuiError
from engine.support.os_lock import lock_waiting

PREFIX = "builtin:"
# name: (size, variant, pretrained). Only tiny-sd1 ships weights (engine/builtin/assets/); the rest are random.
MODELS = {
    "tiny-sd1": ("tiny", "sd1", True),
    "tiny-sd1-random": ("tiny", "sd1", False),  # for tests that measure learning from scratch
    "tiny-sd2v": ("tiny", "sd2v", False),
    "tiny-sdxl": ("tiny", "sdxl", False),  # two text encoders and text_time conditioning, at 64 px
    "tiny-flux": ("tiny", "flux", False),  # Flux.1's transformer, CLIP-L + T5 and 16-channel VAE, at 64 px
    "medium-sd1": ("medium", "sd1", False),
    "sd15-random": ("sd15", "sd1", False),
    "sdxl-random": ("sdxl", "sdxl", False),  # SDXL base's real size, for GPU benchmarks
    "flux-random": ("flux", "flux", False),  # Flux.1 [dev]'s real size, for GPU benchmarks
}
# Each tiny model's native size and the pixel step of its bucket sizes (engine.model_info.native_size, size_multiple),
# known without building it: a profile's checks run on the wizard's UI thread at each keystroke, and a build there froze
# it for seconds. The shipped tiny SD1's VAE has one level more than the random ones'. tests/test_model_sizes.py
# compares each with the built model's configs.
TINY_SIZES = {"tiny-sd1": (64, 8), "tiny-sd1-random": (64, 4), "tiny-sd2v": (64, 4), "tiny-sdxl": (64, 4),
              "tiny-flux": (64, 4)}
DATASETS = {"demo-instance": "instance", "demo-class": "class"}
# Random-weight scorers for [evaluation] (engine/builtin/tiny_scorers.py): name → its builder's name.
SCORERS = {"tiny-clip": "save_tiny_clip", "tiny-dino": "save_tiny_dino"}


class UnknownBuiltinError(DbtuiError):
    """A ``builtin:`` name that does not exist."""


def cache_dir() -> Path:
    """Where built-in assets are built: $DBTUI_CACHE, else ~/.cache/dbtui."""
    return Path(os.environ.get("DBTUI_CACHE") or Path.home() / ".cache" / "dbtui")


def is_builtin(name: str | None) -> bool:
    return bool(name) and name.startswith(PREFIX)


class BuiltinCacheError(DbtuiError):
    """The folder built-in assets are built in cannot be written (read-only, full, or a file in the way)."""


def _build_once(target: Path, build) -> Path:
    if target.exists():
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        lock = os.open(target.parent / f".{target.name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise _cache_error(target, error) from None
    try:
        # Two processes asking at once (the wizard and a run, or test workers): the second waits for the first's
        # build, then reads it, rather than spending the same seconds again.
        lock_waiting(lock)
        return target if target.exists() else _build_into(target, build)
    except OSError as error:
        raise _cache_error(target, error) from None
    finally:
        os.close(lock)


def _build_into(target: Path, build) -> Path:
    # Build beside the target and rename, so an interrupted build never looks finished.
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        build(tmp)
        try:
            tmp.rename(target)
        except OSError:
            if not target.exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _cache_error(target: Path, error: OSError) -> BuiltinCacheError:
    return BuiltinCacheError(f"cannot build builtin:{target.name} in {target.parent} ({error.strerror or error}): set "
                             "DBTUI_CACHE to a folder you can write to (e.g. DBTUI_CACHE=/tmp/dbtui-cache), then run it again")


def _builtin_key(name: str, table: dict[str, Any], what: str) -> str:
    """The key of ``builtin:<key>`` in ``table``, or a message naming the ones there are."""
    key = name[len(PREFIX):]
    if key not in table:
        raise UnknownBuiltinError(f"unknown built-in {what} '{name}'; choose one of: " + ", ".join(PREFIX + k for k in table))
    return key


def _build_model(tmp: Path, size: str, variant: str, pretrained: bool) -> None:
    """Write the built-in model ``(size, variant)`` as a diffusers folder into ``tmp``."""
    if variant == "sdxl" and size == "sdxl":
        from engine.builtin.sdxl_random import save_sdxl_random

        save_sdxl_random(tmp)
        return
    if variant == "flux" and size == "flux":
        from engine.builtin.flux_random import save_flux_random

        save_flux_random(tmp)
        return
    if variant == "flux":
        from engine.builtin.tiny_flux import save_tiny_flux

        save_tiny_flux(tmp)
        return
    if variant == "sdxl":
        from engine.builtin.tiny_sdxl import save_tiny_sdxl

        save_tiny_sdxl(tmp)
        return
    from engine.builtin.tiny_model import save_tiny_model

    save_tiny_model(tmp, size=size, variant=variant, pretrained=pretrained)


def builtin_family(name: str) -> str | None:
    """The family id (engine/models) of a built-in model, without building it; None for an unknown name."""
    entry = MODELS.get(name[len(PREFIX):])
    return None if entry is None else {"sd1": "sd", "sd2v": "sd"}.get(entry[1], entry[1])


def known_builtin(name: str, kind: str) -> str | None:
    """None when ``builtin:<key>`` names a built-in of ``kind`` ("model", "folder" or "scorer"); else what to write
    instead."""
    try:
        _builtin_key(name, {"model": MODELS, "folder": DATASETS, "scorer": SCORERS}[kind], kind)
    except UnknownBuiltinError as error:
        return str(error)
    return None


def built(name: str) -> bool:
    """Whether ``builtin:<name>`` is in the cache already (resolving it builds nothing); other names count as built."""
    key = name[len(PREFIX):] if is_builtin(name) else ""
    if key in MODELS:
        return (cache_dir() / "models" / key).exists()
    if key in SCORERS:
        return (cache_dir() / "scorers" / key).exists()
    return key not in DATASETS or (cache_dir() / "demo-data").exists()


def resolve_model(name: str) -> str:
    """A path for ``builtin:<model>``; other names are returned unchanged."""
    if not is_builtin(name):
        return name
    key = _builtin_key(name, MODELS, "model")
    size, variant, pretrained = MODELS[key]

    def build(tmp: Path) -> None:
        import torch

        # Random weights are drawn here: the caller's random state must not depend on whether the
        # model was built already (a run that builds it would otherwise train from other numbers).
        with torch.random.fork_rng(devices=[]):
            _build_model(tmp, size, variant, pretrained)

    return str(_build_once(cache_dir() / "models" / key, build))


def resolve_scorer(name: str) -> str:
    """A path for ``builtin:tiny-clip`` / ``builtin:tiny-dino``; other names (hub ids, folders) unchanged."""
    if not is_builtin(name):
        return name
    key = _builtin_key(name, SCORERS, "scorer")

    def build(tmp: Path) -> None:
        from engine.builtin import tiny_scorers

        getattr(tiny_scorers, SCORERS[key])(tmp)

    return str(_build_once(cache_dir() / "scorers" / key, build))


def resolve_dir(name: str) -> str:
    """A path for ``builtin:demo-instance`` / ``builtin:demo-class``; other names unchanged."""
    if not is_builtin(name):
        return name
    key = _builtin_key(name, DATASETS, "folder")

    def build(tmp: Path) -> None:
        from engine.builtin.demo_data import write_demo_dataset

        write_demo_dataset(tmp)

    return str(_build_once(cache_dir() / "demo-data", build) / DATASETS[key])


def concept_folders(profile: Any) -> tuple[list[Path], list[Path | None]]:
    """Each concept's instance folder and class folder (None: not set) with ``builtin:`` names made paths, as the
    trainer and the launch that decodes before it detaches both read them."""
    return ([Path(resolve_dir(concept.instance_dir)) for concept in profile.concepts],
            [Path(resolve_dir(concept.class_dir)) if concept.class_dir else None for concept in profile.concepts])


def demo_profile_text() -> str:
    """The tiny demo profile shipped with dbtui (the same as profiles/tiny-demo.toml)."""
    return (Path(__file__).parent / "tiny-demo.toml").read_text(encoding="utf-8")
