"""A single-file checkpoint as the checks before a run read it (the wizard's Model step, the memory meter): a
.safetensors file's tensor names, shapes and metadata from its header, not its gigabytes.

safetensors maps the file and reads a tensor's data only where it is used, yet ``get_tensor`` touches each tensor's
first page and the kernel reads ahead around it: asking a 2 GB SD1.5 file for every tensor read 1.4 GB of it from disk
(measured), minutes on a network volume, to learn what its header says.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.convert.load_checkpoint import Checkpoint, checked_kind, damaged_safetensors, read_checkpoint


def header_checkpoint(path: str | Path) -> Checkpoint:
    """``read_checkpoint(path)`` as far as ``checkpoint_family`` and the part checks read it: a .safetensors file's
    tensors as objects with their ``shape``, but for the one bias whose values tell SD2.x-v from SD2.x-base, read where
    neither its .yaml nor its metadata says what it predicts. A pickle is read as ``read_checkpoint`` reads it (a zip
    .ckpt's storages are mapped, not read)."""
    from engine.convert.detect import as_state_dict, detect_family, prediction_guessed, prediction_hint, v_bias_key
    from engine.convert.errors import CheckpointReadError
    from engine.support.safetensors_header import read_header

    path = Path(path)
    if checked_kind(path) != "safetensors":
        return read_checkpoint(path)
    try:
        header = read_header(path)
    except Exception as error:  # noqa: BLE001 - safetensors raises several types for a bad file
        raise damaged_safetensors(path, error) from error
    shapes, metadata = as_state_dict(header.shapes), header.metadata
    if not shapes:
        raise CheckpointReadError(f"{path} holds no model weights (no tensors found)")
    hint = prediction_hint(path, metadata)
    if prediction_guessed(detect_family(shapes, prediction_type=hint or "epsilon"), hint) and (key := v_bias_key(shapes)):
        shapes[key] = _tensor(path, key)
    return Checkpoint(path=path, state_dict=shapes, metadata=metadata)


def _tensor(path: Path, key: str) -> Any:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as file:  # torch: the bias may be bf16, which numpy cannot hold
            return file.get_tensor(key)
    except Exception as error:  # noqa: BLE001 - safetensors raises several types for a bad file
        raise damaged_safetensors(path, error) from error
