"""The content hash of a base model's weights: the files its load reads, whole, in blocks, stopped on request.

A hash names its algorithm ("sha256:…", about twice blake2b's speed on CPUs with SHA instructions) and so which files
it covers: the weights each part's load reads (not an .fp16. variant or a .ckpt beside them), a single file with the
.yaml beside it that its conversion reads. A hash without a name is blake2b of every weight file, as dbtui first recorded
them; it is still read, and a model is hashed that way again to compare with it.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path

from engine.events import Event, PhaseFinished, PhaseProgress, PhaseStarted
from engine.support.json_file import read_json_object

PHASE = "hashing_weights"
CURRENT = "sha256"
LEGACY = "blake2b"
_BLOCK = 16 * 2**20
_MIB = 2**20
_SHOWN_AFTER = 1.0  # seconds: a quicker hash needs no bar
WEIGHT_SUFFIXES = {".safetensors", ".bin", ".ckpt", ".pt", ".gguf"}
# What a part's load reads, safetensors before .bin (diffusers' and transformers' own preference): whole, or the
# shards its index names.
_READ = {".safetensors": ("diffusion_pytorch_model", "model"), ".bin": ("diffusion_pytorch_model", "pytorch_model")}


class HashingStopped(Exception):
    """The run was asked to stop while a model was hashed."""


def scheme_of(digest: str) -> str:
    return digest.split(":", 1)[0] if ":" in digest else LEGACY


def listed(place: Path) -> list[tuple[str, Path]]:
    """(name, file) of each weight file of a folder, or of the single file ``place``."""
    if place.is_file():
        return [(place.name, place)]
    return [(file.relative_to(place).as_posix(), file) for file in sorted(place.rglob("*"))
            if file.suffix in WEIGHT_SUFFIXES and file.is_file()]


def _read_by_load(folder: Path) -> list[tuple[str, Path]]:
    """The weight files a load of the folder's parts reads (a VAE folder's at its top): each part's safetensors, else
    its .bin; of a part laid out otherwise, or a folder, every weight file in it."""
    from engine.models.folder_parts import READ_PARTS

    read: list[str] = []
    for part in ("", *READ_PARTS):
        for suffix, stems in _READ.items():
            found = [name for stem in stems for name in _whole_or_shards(folder, part, stem + suffix)]
            if found:
                break
        if not found and part and (folder / part).is_dir():  # laid out otherwise (only an .fp16. variant): all of it
            found = [f"{part}/{name}" for name, _ in listed(folder / part)]
        read += found
    return [(name, folder / name) for name in sorted(set(read))] or listed(folder)


def _whole_or_shards(folder: Path, part: str, weights: str) -> list[str]:
    """``weights`` of ``part``, and the shards its index names (both where both are there: either may be read)."""
    prefix = f"{part}/" if part else ""
    shards = read_json_object(folder / prefix / f"{weights}.index.json").get("weight_map")
    named = sorted({f"{prefix}{shard}" for shard in shards.values()}) if isinstance(shards, dict) else []
    return [name for name in [f"{prefix}{weights}", *named] if (folder / name).is_file()]


def hashed_files(source: Path, scheme: str) -> list[tuple[str, Path]]:
    """(name, file) of what a hash of ``scheme`` covers: a single file's name is none (it may be renamed)."""
    if scheme == LEGACY:
        return [("" if file == source else name, file) for name, file in listed(source)]
    if source.is_file():
        sidecar = source.with_suffix(".yaml")  # its config, which the conversion reads (conversion_note)
        return [("", source), *([(".yaml", sidecar)] if sidecar.is_file() else [])]
    return _read_by_load(source)


def digest(source: Path, scheme: str = CURRENT, emit: Callable[[Event], None] = lambda e: None,
           should_stop: Callable[[], bool] = lambda: False) -> str:
    """The hash of ``scheme`` of each file's name and bytes, in blocks; HashingStopped once ``should_stop``. Shown to
    ``emit`` as a phase once it has taken a second: a model on a slow disk took that long at any size. A phase shown
    ends however the hash does, as stopped where it is not whole: a failed read (OSError, a file removed mid-hash) left
    its bar on the screen."""
    files = hashed_files(source, scheme)
    total = sum(file.stat().st_size for _, file in files) // _MIB
    started, done, shown, whole = time.perf_counter(), 0, False, False
    hasher = hashlib.new(scheme)
    try:
        for name, file in files:
            hasher.update(json.dumps([name, file.stat().st_size]).encode())
            with open(file, "rb") as stream:
                while block := stream.read(_BLOCK):
                    if should_stop():
                        raise HashingStopped(str(source))
                    hasher.update(block)
                    done += len(block)
                    if not shown and time.perf_counter() - started >= _SHOWN_AFTER:
                        shown = True
                        emit(PhaseStarted(phase=PHASE, total=total, description=f"hashing {source} (MiB)"))
                    if shown:
                        emit(PhaseProgress(phase=PHASE, done=done // _MIB, total=total))
        whole = True
    finally:
        if shown:
            emit(PhaseFinished(phase=PHASE, seconds=time.perf_counter() - started, stopped=not whole))
    return hasher.hexdigest() if scheme == LEGACY else f"{scheme}:{hasher.hexdigest()}"
