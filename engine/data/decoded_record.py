"""The run's record of the training images that decoded whole, so that a re-run or a resume decodes none again.

The latents' cache cannot tell it before the model loads: its keys hold the VAE's weight fingerprint
(engine/data/cache_keys.py). The record is kept beside that cache, in ``RUN/cache/decoded.json``, and
says each image by its file as the file system describes it (path, size, inode, modification and
change times): writing a file in place changes its change time and replacing it its inode, so an image
changed since is decoded again, and nothing but a stat is read (engine/data/part_fingerprints.py
trusts the model's files the same way).
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterable
from pathlib import Path

from engine.support.json_file import read_json_object


def _file_said(path: Path) -> list[int] | None:
    """``path``'s size, inode, modification and change times (ns); None where it cannot be read."""
    try:
        info = path.stat()
    except OSError:
        return None
    return [info.st_size, info.st_ino, info.st_mtime_ns, info.st_ctime_ns]


class DecodedRecord:
    """Images known to decode, in ``path``. ``writes``: False on processes that only read what the writing one put."""

    def __init__(self, path: Path, *, writes: bool = True):
        self.path = Path(path)
        self.writes = writes
        self._before: dict[str, list[int]] = {}  # each image as ``unchecked`` found it, before it was decoded

    @classmethod
    def of_run(cls, run_dir: Path, *, writes: bool = True) -> DecodedRecord:
        """The record of the run in ``run_dir``: the launch that decodes before it detaches and the trainer after it
        must name one file, or the trainer decodes every image again."""
        return cls(Path(run_dir) / "cache" / "decoded.json", writes=writes)

    def unchecked(self, paths: list[Path]) -> list[Path]:
        """The images of ``paths`` the record does not hold as they stand now, in order."""
        known = read_json_object(self.path)  # missing or damaged: every image is decoded again
        unchecked = []
        for path in paths:
            said = _file_said(path)
            if said is None or known.get(str(path.absolute())) != said:
                unchecked.append(path)
                if said is not None:
                    self._before[str(path.absolute())] = said
        return unchecked

    def add(self, paths: Iterable[Path]) -> None:
        """Record ``paths`` as decoded, as ``unchecked`` found them: a file rewritten while they were decoded (a sync
        client, a copy still under way) no longer matches, and is decoded again. Best effort, through a temporary file
        renamed into place: a record that cannot be written (a full disk, a read-only folder) only means the next run
        decodes them again."""
        if not self.writes:
            return
        known = read_json_object(self.path)
        for path in paths:
            if (said := self._before.get(str(path.absolute()))) is not None:
                known[str(path.absolute())] = said
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
        with contextlib.suppress(OSError):
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                temporary.write_text(json.dumps(known, sort_keys=True), encoding="utf-8")
                os.replace(temporary, self.path)
            finally:
                temporary.unlink(missing_ok=True)
