"""Temporaries killed writes left beside an output: removed before they refuse the write that replaces them, and
never while their writer runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections import namedtuple
from pathlib import Path

import pytest
from convert_helpers import random_sd1  # noqa: F401

from engine.convert import NotEnoughDiskError, export_single_file
from engine.convert.partials import STALE_PARTIAL_S, THIS_HOST, THIS_NAMESPACE, abandoned_partial, writer_tag

usage = namedtuple("usage", "total used free")
needs_namespace = pytest.mark.skipif(THIS_NAMESPACE is None, reason="no pid namespace is known here")


def _dead_pid() -> str:
    return subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()


def _disk_of(folder: Path, room: int):
    """A disk that has ``room`` bytes free beside what the temporaries in ``folder`` hold."""
    def disk_usage(_) -> usage:
        held = sum(path.stat().st_size for path in folder.glob(".*.partial"))
        return usage(10**12, 10**12 - room + held, room - held)

    return disk_usage


@needs_namespace
def test_a_just_killed_writers_temporary_is_removed_before_the_free_space_check(random_sd1: Path, tmp_path: Path,
                                                                                 monkeypatch) -> None:
    """It counted as used, so the re-conversion was refused for want of the room it held (and a killed export's
    was kept 15 minutes, its pid possibly another container's)."""
    first = tmp_path / "first.safetensors"
    export_single_file(random_sd1, first)
    size = first.stat().st_size
    tag = writer_tag().replace(f".{os.getpid()}-", f".{_dead_pid()}-")
    partial = tmp_path / f".m.safetensors.{tag}.0badc0de.partial"
    partial.write_bytes(b"x" * size)  # killed a moment ago
    monkeypatch.setattr(shutil, "disk_usage", _disk_of(tmp_path, 2 * size))
    export_single_file(random_sd1, tmp_path / "m.safetensors")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["first.safetensors", "m.safetensors"]


def test_the_refusal_names_temporaries_too_recent_to_remove(random_sd1: Path, tmp_path: Path, monkeypatch) -> None:
    partial = tmp_path / f".m.safetensors.{THIS_HOST}.{_dead_pid()}-1.0badc0de.partial"  # another namespace's
    partial.write_bytes(b"x" * 3000)
    monkeypatch.setattr(shutil, "disk_usage", _disk_of(tmp_path, 4000))
    with pytest.raises(NotEnoughDiskError, match=rf"{partial.name} \(3.0 kB\); delete them once no conversion"):
        export_single_file(random_sd1, tmp_path / "m.safetensors")
    assert partial.exists()


@needs_namespace
def test_a_running_writers_temporary_is_kept_however_long_untouched(tmp_path: Path, monkeypatch) -> None:
    """A suspended laptop's or a stopped process's write was removed after a day, to fail at its rename."""
    import psutil

    runs = tmp_path / f".m.safetensors.{writer_tag()}.0badc0de.partial"
    runs.write_text("half")
    touched = psutil.Process().create_time() + 1
    os.utime(runs, (touched, touched))
    with monkeypatch.context() as later:
        later.setattr(time, "time", lambda: touched + STALE_PARTIAL_S + 60)  # resumed a day later
        assert not abandoned_partial(runs, "m.safetensors")
    # The pid of one since dead, now another's (started after the temporary was last touched): not the writer.
    started = tmp_path / f".m.safetensors.{writer_tag().replace(f'.{os.getpid()}-', '.1-')}.0badc0de.partial"
    started.write_text("half")
    os.utime(started, (0, 0))
    assert abandoned_partial(started, "m.safetensors")
