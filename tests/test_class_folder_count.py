"""`dataset check`'s count of the class folder's pictures, one look at its path for a folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

from engine.dataset import class_checks
from engine.dataset.class_checks import class_images_present


@pytest.mark.parametrize(("made", "count"), [("folder", 2), ("file", None), ("absent", 0)])
def test_the_class_folder_count_stats_its_path_once(tmp_path: Path, monkeypatch, made: str, count: int | None) -> None:
    """A folder's pictures, None where a file stands in its place, 0 where the run is yet to make it; a folder (the
    usual case, where a check may run often) is looked at once, where one expression stat-ed it up to three times."""
    class_dir = tmp_path / "class"
    if made == "folder":
        class_dir.mkdir()
        for name in ("a.png", "b.png"):
            Image.new("RGB", (8, 8)).save(class_dir / name)
    elif made == "file":
        class_dir.write_bytes(b"not a folder")
    assert class_images_present(class_dir) == count
    assert class_images_present(None) is None and class_images_present("") is None  # no class folder given
    stats: list[str] = []
    real_stat = os.stat

    def counted_stat(path, *args, **kwargs):
        if os.fspath(path) == str(class_dir):
            stats.append(os.fspath(path))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", counted_stat)
    monkeypatch.setattr(class_checks.files, "list_images", lambda folder: [Path(folder) / "a.png"])  # its own reads
    class_images_present(class_dir)
    assert len(stats) == (1 if made == "folder" else 2), stats
