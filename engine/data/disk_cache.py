"""Where cached latents and text embeddings live: one safetensors file per key on disk, or a dict.

On disk, nothing stays in RAM: each read memory-maps the file (safetensors) and the tensors are
dropped after use, so a 10,000-image run holds one batch's entries, not every latent; the OS
page cache keeps hot files fast. Writes go to a temporary file, flushed to disk and renamed into
place, so a killed run or a power loss never leaves a half-written entry, and two writers of the
same key cannot interleave.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Protocol

import torch

from engine.convert._files import usual_permissions
from engine.convert.partials import THIS_HOST, writer_gone, writer_tag

Entry = dict[str, torch.Tensor]


class TensorStore(Protocol):
    def has(self, key: str) -> bool: ...
    def get(self, key: str) -> Entry | None: ...
    def put(self, key: str, entry: Entry) -> None: ...
    def clear(self) -> None: ...


class MemoryStore:
    """Entries in RAM, for a source with no folder to cache into."""

    def __init__(self) -> None:
        self._entries: dict[str, Entry] = {}

    def has(self, key: str) -> bool:
        return key in self._entries

    def get(self, key: str) -> Entry | None:
        return self._entries.get(key)

    def put(self, key: str, entry: Entry) -> None:
        self._entries[key] = entry

    def clear(self) -> None:
        self._entries.clear()


class DiskStore:
    """Entries as ``folder/KEY.safetensors``. ``writes``: False on processes that only read what the
    writing process (the main one of the machine) put there."""

    def __init__(self, folder: Path, *, writes: bool = True):
        self.folder = Path(folder)
        self.writes = writes
        if writes:
            self._drop_leftovers()

    def _drop_leftovers(self) -> None:
        """Temporary files of a writer killed mid-write (its process is gone): never read, only taking disk. Only
        this machine's (``writer_gone``)."""
        for temporary in self.folder.glob(".*.tmp"):
            parts = temporary.name.rsplit(".", 3)  # .NAME.HOST.PID.HEX.tmp, as ``put`` names them
            if len(parts) < 4:
                continue  # not one of ours
            host, pid = parts[0].rsplit(".", 1)[-1], parts[1]
            if host == "safetensors":  # named before the host was: .NAME.PID.HEX.tmp, taken for this machine's
                host = THIS_HOST
            if writer_gone(host, pid):
                temporary.unlink(missing_ok=True)

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.safetensors"

    def has(self, key: str) -> bool:
        """Whether the entry is there whole: its safetensors header read, and the file as long as it says. A file
        cut short (a copy that ran out of disk) counts as missing, so that the caching pass makes it again on the
        device rather than the training loop on the host, loading the frozen encoders for it."""
        from engine.convert.errors import CheckpointReadError
        from engine.convert.file_format import checkpoint_kind

        try:
            return checkpoint_kind(self.path(key)) == "safetensors"
        except CheckpointReadError:
            return False

    def get(self, key: str) -> Entry | None:
        """The entry, memory-mapped; None when missing or unreadable (it is then made again)."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(self.path(key))
        except (OSError, SafetensorError):
            return None

    def put(self, key: str, entry: Entry) -> None:
        from safetensors.torch import save_file

        if not self.writes:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self.path(key)
        temporary = target.with_name(f".{target.name}.{writer_tag()}.{uuid.uuid4().hex}.tmp")
        try:
            save_file({name: tensor.detach().cpu().contiguous() for name, tensor in entry.items()}, temporary)
            usual_permissions(temporary)
            # On disk before the rename: after a power loss the entry could else be there at full length with its
            # data zeroed, which ``has`` takes for whole.
            with temporary.open("rb") as file:
                os.fsync(file.fileno())
            os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)

    def clear(self) -> None:
        """Nothing is held in RAM; the files stay for the next run and resume."""
