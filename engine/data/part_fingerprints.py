"""Model parts' weight fingerprints, remembered beside the cache so that a re-run keys its cache
entries without loading the parts.

A fingerprint (``cache_keys.module_fingerprint``) reads the part's weights, so it needs the part in
memory; a run whose embeddings are all cached would load its text encoders only for that. The book
keeps each fingerprint in ``RUN/cache/fingerprints.json`` under a key made of how the part is used
(family, index, dtype) and of its folder's files as the file system describes them: name, size,
inode, mtime and ctime. Writing a file in place changes its ctime, and replacing it changes its
inode, so a fine-tuned, merged or swapped part is fingerprinted again; nothing but the stat is read.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.data.cache_keys import digest


def files_key(folder: Path, usage: dict[str, Any]) -> str | None:
    """The key of ``folder``'s files as they stand, used as ``usage`` says; None when the folder cannot
    be read (then nothing is remembered)."""
    try:
        files = []
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            if entry.is_file():
                stat = entry.stat()
                files.append([entry.name, stat.st_size, stat.st_ino, stat.st_mtime_ns, stat.st_ctime_ns])
    except OSError:
        return None
    return digest({"kind": "part-files", "folder": str(Path(folder).resolve()), "usage": usage, "files": files}) if files else None


class FingerprintBook:
    """Fingerprints remembered in ``path``. ``writes``: False on processes that only read what the
    writing process (the main one of the machine) put there."""

    def __init__(self, path: Path, *, writes: bool = True):
        self.path = Path(path)
        self.writes = writes
        self._entries: dict[str, str] | None = None

    def _read(self) -> dict[str, str]:
        if self._entries is None:
            try:
                entries = json.loads(self.path.read_text(encoding="utf-8"))
                self._entries = {str(k): str(v) for k, v in entries.items()} if isinstance(entries, dict) else {}
            except (OSError, ValueError):
                self._entries = {}  # missing or damaged: every part is fingerprinted again
        return self._entries

    def fingerprint(self, folder: Path, usage: dict[str, Any], compute: Callable[[], str]) -> str:
        """The remembered fingerprint of the part in ``folder``, else ``compute()`` (remembered from now on)."""
        key = files_key(folder, usage)
        entries = self._read()
        if key is not None and key in entries:
            return entries[key]
        value = compute()
        if key is not None and self.writes:
            entries[key] = value
            self._write(entries)
        return value

    def _write(self, entries: dict[str, str]) -> None:
        """Best effort, through a temporary file renamed into place: a book that cannot be written (a full
        disk, a read-only folder) only means the next run fingerprints its parts again."""
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
        with contextlib.suppress(OSError):
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                temporary.write_text(json.dumps(entries, indent=1, sort_keys=True), encoding="utf-8")
                os.replace(temporary, self.path)
            finally:
                temporary.unlink(missing_ok=True)
