"""``dbtui dataset caption`` lists the folder's images once per command: --add-tag that changed nothing listed them
three times (the --extension check, the edit, what to say of nothing changed), 0.3 s each for 10,000 images."""

from __future__ import annotations

from pathlib import Path

import pytest
from dataset_fixture import textured

import engine.dataset.files as files
from dbtui.cli import main
from engine.dataset import CaptionStore


@pytest.mark.parametrize("action", [["--add-tag", "ohwx"], ["--remove-tag", "cat"], ["--dedupe"], ["--trim"]])
def test_a_bulk_edit_that_changes_nothing_lists_the_images_once(tmp_path: Path, action: list[str], monkeypatch) -> None:
    for index in range(3):
        textured(index, (64, 64)).save(tmp_path / f"{index}.jpg")
        (tmp_path / f"{index}.txt").write_text("ohwx, dog\n")
    listed = []
    scan = files.scan_folder
    monkeypatch.setattr(files, "scan_folder", lambda *args, **kwargs: listed.append(args) or scan(*args, **kwargs))
    assert main(["dataset", "caption", str(tmp_path), *action]) == 0
    assert len(listed) == 1


def test_a_store_that_lives_on_sees_the_pictures_added_since(tmp_path: Path) -> None:
    """The wizard's store stays open while pictures are copied in: it lists them at each use."""
    textured(0, (64, 64)).save(tmp_path / "a.jpg")
    store = CaptionStore(tmp_path)
    assert len(store.images()) == 1
    textured(1, (64, 64)).save(tmp_path / "b.jpg")
    assert len(store.images()) == 2
