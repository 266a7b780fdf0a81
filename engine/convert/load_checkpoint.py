"""Read a single-file checkpoint safely: safetensors, or a pickle through ``weights_only`` only.

A ``.ckpt`` is a pickle, and unpickling can run any code the file names. torch's
``weights_only`` unpickler allows tensors and plain containers and nothing else; a file that
needs more is refused, never executed.
"""

from __future__ import annotations

import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.convert.errors import CheckpointReadError, UnsafeCheckpointError

SAFETENSORS_ADVICE = "get the .safetensors version of this model (most model sites offer one)"


@dataclass(frozen=True)
class Checkpoint:
    """The tensors of a single-file checkpoint, with its safetensors metadata (if any)."""

    path: Path
    state_dict: dict[str, Any]
    metadata: dict[str, str] = field(default_factory=dict)


def _kind(path: Path) -> str:
    """Tell the format from the first bytes, not the extension (files get renamed)."""
    with path.open("rb") as file:
        head = file.read(9)
    # safetensors: an 8-byte little-endian header length, then the JSON header.
    if len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < path.stat().st_size:
        return "safetensors"
    if head.startswith(b"PK\x03\x04"):
        return "torch-zip"
    if head.startswith(b"\x80"):
        return "pickle"
    raise CheckpointReadError(
        f"{path} is not a checkpoint dbtui can read (neither safetensors nor a PyTorch .ckpt); "
        "check that the download finished and that it is a model file, not a web page"
    )


def _read_safetensors(path: Path) -> tuple[dict[str, Any], dict[str, str]]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as file:
            metadata = dict(file.metadata() or {})
            tensors = {key: file.get_tensor(key) for key in file.keys()}
    except Exception as error:  # noqa: BLE001 - safetensors raises several types for a bad file
        raise CheckpointReadError(
            f"{path} is damaged or truncated ({error}); download it again and compare its size with the model page"
        ) from error
    return tensors, metadata


def _read_pickle(path: Path, zipped: bool) -> Any:
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=zipped)
    except pickle.UnpicklingError as error:
        if "weights only load failed" in str(error).lower():
            culprit = re.search(r"GLOBAL ([\w.]+)", str(error))
            raise UnsafeCheckpointError(
                f"{path} refused: this pickle needs more than tensors to load"
                + (f" (it calls {culprit.group(1)})" if culprit else "")
                + ". Loading it would run code the file names, so dbtui does not. "
                f"Instead, {SAFETENSORS_ADVICE}."
            ) from None
        raise CheckpointReadError(f"{path} is damaged or truncated ({error}); download it again") from error
    except (RuntimeError, EOFError, ValueError, OSError) as error:
        raise CheckpointReadError(f"{path} is damaged or truncated ({error}); download it again") from error


def read_checkpoint(path: str | Path) -> Checkpoint:
    """Every tensor of a checkpoint; a top-level ``state_dict`` wrapper is unwrapped."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointReadError(f"{path}: no such file")
    kind = _kind(path)
    if kind == "safetensors":
        data, metadata = _read_safetensors(path)
    else:
        data, metadata = _read_pickle(path, zipped=kind == "torch-zip"), {}
    # Training frameworks save {"state_dict": {...}, "global_step": ..., ...}, sometimes nested.
    while isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
        data = data["state_dict"]
    tensors = {k: v for k, v in data.items() if isinstance(v, torch.Tensor)} if isinstance(data, dict) else {}
    if not tensors:
        raise CheckpointReadError(f"{path} holds no model weights (no tensors found)")
    return Checkpoint(path=path, state_dict=tensors, metadata=metadata)
