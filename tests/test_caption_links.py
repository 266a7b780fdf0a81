"""A caption file that is a link to another caption of the folder (b.txt -> a.txt, one caption shared by two images)."""

from __future__ import annotations

import os
from pathlib import Path

from dataset_fixture import textured

from engine.dataset import CaptionStore


def test_a_bulk_edit_writes_a_shared_caption_once_through_its_link_and_undo_keeps_the_link(tmp_path: Path) -> None:
    """--add-tag replaced the link b.txt with a copy of the edited text, and --undo put back a copy too: the two images
    no longer shared their caption, and an edit of a.txt by hand no longer reached b.png."""
    for i, name in enumerate("abcd"):
        textured(i, (32, 32)).save(tmp_path / f"{name}.jpg")
    (tmp_path / "a.txt").write_text("dog, grass\n", encoding="utf-8")
    (tmp_path / "b.txt").symlink_to("a.txt")
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "common.txt").write_text("cat\n", encoding="utf-8")
    (tmp_path / "c.txt").symlink_to("shared/common.txt")  # a file no image owns: still edited once
    (tmp_path / "d.txt").symlink_to("shared/common.txt")
    store = CaptionStore(tmp_path)
    changes = store.add_tag("zwx")
    assert sorted(change.path.relative_to(tmp_path).as_posix() for change in changes.changes) == ["a.txt", "shared/common.txt"]
    links = ["a.txt", "shared/common.txt", "shared/common.txt"]
    assert [os.readlink(tmp_path / name) for name in ("b.txt", "c.txt", "d.txt")] == links
    assert store.read("b.jpg") == "zwx, dog, grass" and store.read("d.jpg") == "zwx, cat"
    CaptionStore(tmp_path).undo()
    assert [os.readlink(tmp_path / name) for name in ("b.txt", "c.txt", "d.txt")] == links
    assert (tmp_path / "a.txt").read_text() == "dog, grass\n" and (tmp_path / "shared" / "common.txt").read_text() == "cat\n"
    assert [change.path.name for change in store.replace("dog", "wolf").changes] == ["a.txt"]
    assert os.readlink(tmp_path / "b.txt") == "a.txt" and store.read("b.jpg") == "wolf, grass"


def test_saving_one_caption_writes_through_its_link_and_f2_swaps_the_shared_file(tmp_path: Path) -> None:
    """The wizard's save (CaptionStore.write) replaced the link b.txt with a plain file: b.jpg and a.jpg no longer
    shared their caption, and the edit never reached a.jpg."""
    for i, name in enumerate("ab"):
        textured(i, (32, 32)).save(tmp_path / f"{name}.jpg")
    (tmp_path / "a.txt").write_text("dog, grass\n", encoding="utf-8")
    (tmp_path / "b.txt").symlink_to("a.txt")
    store = CaptionStore(tmp_path)
    assert store.caption_file("b.jpg") == tmp_path / "a.txt" and store.caption_file("a.jpg") == tmp_path / "a.txt"
    store.write("b.jpg", "zwx, dog")
    assert os.readlink(tmp_path / "b.txt") == "a.txt"
    assert store.read("a.jpg") == store.read("b.jpg") == "zwx, dog"
    assert store.previous("b.jpg") == store.previous("a.jpg") == "dog, grass\n"
    assert store.revert("b.jpg")
    assert os.readlink(tmp_path / "b.txt") == "a.txt" and (tmp_path / "a.txt").read_text() == "dog, grass\n"
    assert store.write_if_unchanged("b.jpg", "cat", store.raw("a.jpg"))
    assert os.readlink(tmp_path / "b.txt") == "a.txt" and store.read("a.jpg") == "cat"


def test_the_tag_counts_count_a_linked_caption_once_as_the_wizard_does(tmp_path: Path) -> None:
    """--frequency counted a.txt and its link b.txt as two captions (zwx: 2), where a bulk edit changes one file
    and the wizard's tag line says zwx ×1."""
    for i, name in enumerate("abc"):
        textured(i, (32, 32)).save(tmp_path / f"{name}.jpg")
    (tmp_path / "a.txt").write_text("zwx, dog\n", encoding="utf-8")
    (tmp_path / "b.txt").symlink_to("a.txt")
    (tmp_path / "c.txt").write_text("zwx, cat\n", encoding="utf-8")
    assert CaptionStore(tmp_path).tag_frequency() == [("zwx", 2), ("cat", 1), ("dog", 1)]
