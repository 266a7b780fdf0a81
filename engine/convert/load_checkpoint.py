"""Read a single-file checkpoint safely: safetensors, or a pickle through ``weights_only`` only.

A ``.ckpt`` is a pickle, and unpickling can run any code the file names. torch's
``weights_only`` unpickler allows tensors and plain containers and nothing else; a file that
needs more is refused, never executed.
"""

from __future__ import annotations

import pickle
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.convert.errors import CheckpointReadError, UnsafeCheckpointError
from engine.convert.file_format import Kind, checkpoint_kind
from engine.convert.pickle_globals import unsafe_globals
from engine.support.dangling_link import dangling_link

SAFETENSORS_ADVICE = "get the .safetensors version of this model (most model sites offer one)"


@dataclass(frozen=True)
class Checkpoint:
    """The tensors of a single-file checkpoint, with its safetensors metadata (if any)."""

    path: Path
    state_dict: dict[str, Any]
    metadata: dict[str, str] = field(default_factory=dict)


def _read_safetensors(path: Path) -> tuple[dict[str, Any], dict[str, str]]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as file:
            metadata = dict(file.metadata() or {})
            tensors = {key: file.get_tensor(key) for key in file.keys()}
    except Exception as error:  # noqa: BLE001 - safetensors raises several types for a bad file
        raise damaged_safetensors(path, error) from error
    return tensors, metadata


def damaged_safetensors(path: Path, error: Exception) -> CheckpointReadError:
    # The header was checked already: what is left is damage inside it (offsets, dtypes, shapes).
    return CheckpointReadError(f"{path} is damaged: its safetensors header does not match its tensor data "
                               f"({type(error).__name__}); download it again and compare its size with the model page")


def _refused(path: Path, culprit: str) -> UnsafeCheckpointError:
    return UnsafeCheckpointError(
        f"{path} refused: this pickle needs more than tensors to load (it calls {culprit}). "
        f"Loading it would run code the file names, so dbtui does not. Instead, {SAFETENSORS_ADVICE}."
    )


def pickle_refusal(path: Path, zipped: bool) -> str | None:
    """Why the pickle checkpoint ``path`` would be refused, read from its opcodes without loading it (for the checks
    before a run): what it calls beyond tensors; None where it calls nothing more, or cannot be read so."""
    try:
        unsafe = unsafe_globals(path, zipped)
    except Exception:  # noqa: BLE001 - zipfile raises many types for a damaged archive: the load says what is wrong
        return None
    return str(_refused(path, unsafe[0])) if unsafe else None


def _read_pickle(path: Path, zipped: bool) -> Any:
    import torch

    what = "PyTorch checkpoint (ZIP)" if zipped else "PyTorch pickle checkpoint"
    try:
        with warnings.catch_warnings():
            # torch warns of any pickle protocol but 2 on stderr; what it cannot read is said below.
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            if path.name.endswith(".safetensors"):
                # torch reads a path so named as safetensors whatever its bytes (a renamed .ckpt was said damaged):
                # an open file is read by its bytes, though it cannot be memory-mapped.
                with path.open("rb") as file:
                    return torch.load(file, map_location="cpu", weights_only=True)
            return torch.load(path, map_location="cpu", weights_only=True, mmap=zipped)
    except pickle.UnpicklingError as error:
        # The weights-only unpickler names a GLOBAL when the file asks for code. Opcodes of newer protocols stop it
        # before it sees one ("Unsupported operand"): the file's own opcodes then tell what it would call.
        culprit = re.search(r"GLOBAL ([\w.]+)", str(error))
        if culprit:
            raise _refused(path, culprit.group(1)) from None
        try:
            unsafe = unsafe_globals(path, zipped)
        except Exception as read_error:  # noqa: BLE001 - zipfile raises many types for a crafted or damaged archive
            raise CheckpointReadError(f"{path} is a {what} whose pickle cannot be opened to see what it would call "
                                      f"({type(read_error).__name__}: {read_error}): it is damaged or was not written "
                                      f"by PyTorch, and dbtui does not load it; download it again, or "
                                      f"{SAFETENSORS_ADVICE}") from None
        if unsafe:
            raise _refused(path, unsafe[0]) from None
        if "Unsupported operand" in str(error):
            raise CheckpointReadError(f"{path} is a {what} written with a pickle protocol that PyTorch's safe "
                                      f"(weights-only) loader cannot read, and dbtui loads no other way; instead, "
                                      f"{SAFETENSORS_ADVICE}") from None
        raise CheckpointReadError(f"{path} is a {what} that is damaged or truncated; download it again") from error
    except Exception as error:  # noqa: BLE001 - torch raises many types for malformed bytes
        raise CheckpointReadError(f"{path} is a {what} that is damaged or truncated; download it again") from error


def _pickle_metadata(data: Any) -> dict[str, str]:
    """What dbtui's own .ckpt export records beside ``state_dict`` (family, prediction type, base model), as
    safetensors keep it in their header."""
    recorded = data.get("dbtui_metadata") if isinstance(data, dict) else None
    if not isinstance(recorded, dict):
        return {}
    return {k: v for k, v in recorded.items() if isinstance(k, str) and isinstance(v, str)}


def checked_kind(path: Path) -> Kind:
    """The format of the checkpoint file ``path``, read from its first bytes; a folder, a dangling link or no file is
    refused with what to give instead."""
    if path.is_dir():
        raise CheckpointReadError(f"{path} is a folder; give the checkpoint file (.safetensors or .ckpt) itself")
    if path.is_symlink() and not path.exists():  # listed by ls, yet "no such file" would send the user looking there
        raise CheckpointReadError(f"{path} is {dangling_link(path)}: give the model file itself, or make the link "
                                  "point at it")
    if not path.is_file():
        raise CheckpointReadError(f"{path}: no such file")
    return checkpoint_kind(path)


def read_checkpoint(path: str | Path) -> Checkpoint:
    """Every tensor of a checkpoint; a top-level ``state_dict`` wrapper is unwrapped."""
    import torch

    path = Path(path)
    kind = checked_kind(path)
    if kind == "safetensors":
        data, metadata = _read_safetensors(path)
    else:
        data = _read_pickle(path, zipped=kind == "torch-zip")
        metadata = _pickle_metadata(data)
    # Training frameworks save {"state_dict": {...}, "global_step": ..., ...}, sometimes nested.
    while isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
        data = data["state_dict"]
    tensors = (
        {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, torch.Tensor)} if isinstance(data, dict) else {}
    )
    if not tensors:
        raise CheckpointReadError(f"{path} holds no model weights (no tensors found)")
    return Checkpoint(path=path, state_dict=tensors, metadata=metadata)
