"""A .safetensors file's header, read without its tensors: the checks before a run ask what a file holds (its tensor
names, shapes and metadata) of files of gigabytes, where reading a tensor pulls its pages from disk."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple


class SafetensorsHeader(NamedTuple):
    shapes: dict[str, tuple[int, ...]]  # each tensor's shape by name, in the file's order
    metadata: dict[str, str]


def read_header(path: str | Path) -> SafetensorsHeader:
    """``path``'s header alone; raises as safetensors does for a file that is none (OSError, ValueError,
    SafetensorError), for the caller to say what is wrong with it."""
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as file:  # "pt" imports torch (seconds) into the wizard
        shapes = {key: tuple(file.get_slice(key).get_shape()) for key in file.keys()}
        return SafetensorsHeader(shapes, dict(file.metadata() or {}))
