"""A caption file with CRLF (or other) line breaks shows in the editor as training reads it, and saving it unchanged
leaves the file as it is."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from textual.widgets import TextArea

from dbtui.app import make_app
from dbtui.screens.captions import CaptionScreen
from dbtui.session import Session
from engine.data.captions import caption_for
from engine.dataset import captions
from engine.dataset.errors import CaptionError
from wizard_fakes import FakeEngine
from wizard_steps import until


class RealCaptionsEngine(FakeEngine):
    def caption_store(self, folder: str, extension: str):
        return captions.CaptionStore(folder, extension)


async def test_a_crlf_caption_shows_on_one_line_as_trained_and_an_unchanged_save_keeps_the_file(
        tmp_path: Path, demo_data: Path) -> None:
    images = Path(shutil.copytree(demo_data / "instance", tmp_path / "images"))
    image = sorted(images.glob("*.png"))[0]
    caption = image.with_suffix(".txt")
    caption.write_bytes(b"a photo\r\nof zwx\r\n")
    app = make_app(RealCaptionsEngine(), Session.for_demo(), image_renderer="none")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = CaptionScreen(app.session, app.engine, str(images))
        app.push_screen(screen)
        await pilot.pause()
        await until(pilot, lambda: screen.job is None and screen.image is not None)
        assert screen.image == image
        shown = screen.query_one("#cap-text", TextArea).text
        # The tokenizer reads the line break as the space a save writes: one line, as training reads it.
        assert caption_for(image, "caption_file", "") == "a photo\r\nof zwx" and shown == "a photo of zwx"
        await pilot.press("ctrl+s")
        await pilot.pause()
    assert caption.read_bytes() == b"a photo\r\nof zwx\r\n"
    assert not (images / captions.HISTORY_DIR).exists()


def test_a_tag_across_a_crlf_line_break_is_the_tag_the_wizard_shows(tmp_path: Path) -> None:
    """The wizard counts 'a photo\\r\\nof zwx' as 'a photo of zwx' (it trains so): Remove tag 'a photo of zwx' then took
    it out of the other captions alone, leaving the CRLF file's with no word, and `dataset caption --frequency` counted
    it as another tag, printed on two lines."""
    for name in ("a", "b", "c"):
        (tmp_path / f"{name}.png").write_bytes(b"")
    (tmp_path / "a.txt").write_bytes(b"a photo\r\nof zwx, smiling\r\n")
    (tmp_path / "b.txt").write_text("a photo of zwx, happy", encoding="utf-8")
    (tmp_path / "c.txt").write_bytes(b"a Photo\r\nof zwx dog\r\n")
    store = captions.CaptionStore(str(tmp_path), ".txt")
    assert ("a photo of zwx", 2) in store.tag_frequency()
    removed = store.remove_tag("a photo of zwx")
    assert sorted(change.path.name for change in removed.changes) == ["a.txt", "b.txt"]
    assert [kept.path.name for kept in removed.still_said] == ["c.txt"]  # said inside a longer tag: left whole, named
    assert caption_for(tmp_path / "a.png", "caption_file", "") == "smiling"
    added = store.add_tag("photo of ZWX dog")
    assert "c.txt" not in [change.path.name for change in added.changes]  # it says it already, across its line break


def test_a_bulk_edit_that_changes_nothing_leaves_a_crlf_caption_byte_for_byte(tmp_path: Path) -> None:
    """--add-tag ohwx on 'photo of ohwx dog,\\r\\ncrlf\\r\\n' added nothing but rewrote the file as 'photo of ohwx dog,
    crlf\\n' and counted it changed; trim, whose work is the spacing, still rewrites it."""
    (tmp_path / "a.png").write_bytes(b"")
    caption = tmp_path / "a.txt"
    caption.write_bytes(b"photo of ohwx dog,\r\ncrlf\r\n")
    store = captions.CaptionStore(str(tmp_path), ".txt")
    for edit in (lambda: store.add_tag("ohwx"), lambda: store.remove_tag("zwx"), store.dedupe_tags):
        assert len(edit()) == 0
        assert caption.read_bytes() == b"photo of ohwx dog,\r\ncrlf\r\n"
    assert not (tmp_path / captions.HISTORY_DIR).exists()
    assert len(store.trim()) == 1 and caption.read_bytes() == b"photo of ohwx dog, crlf\r\n"


def test_a_bulk_edit_that_rewrites_a_crlf_caption_writes_each_tag_on_one_line(tmp_path: Path) -> None:
    """--dedupe on 'ohwx, red\\r\\nhat, dog, dog\\r\\n' wrote 'ohwx, red\\r\\nhat, dog\\n': the tag it kept still on two
    lines, with mixed line endings; the caption editor saves it as 'red hat', as it trains. The file keeps its CRLF."""
    (tmp_path / "a.png").write_bytes(b"")
    caption = tmp_path / "a.txt"
    store = captions.CaptionStore(str(tmp_path), ".txt")
    for edit, after in ((store.dedupe_tags, b"ohwx, red hat, dog\r\n"),
                        (lambda: store.add_tag("zwx"), b"zwx, ohwx, red hat, dog, dog\r\n"),
                        (lambda: store.remove_tag("dog"), b"ohwx, red hat\r\n")):
        caption.write_bytes(b"ohwx, red\r\nhat, dog, dog\r\n")
        assert len(edit()) == 1 and caption.read_bytes() == after


def test_replace_keeps_each_caption_files_own_line_endings(tmp_path: Path, capsys) -> None:
    """`dataset caption --replace dog cat` wrote 'a photo of cat\\r\\nsitting on grass\\n' (mixed line endings) and
    turned a one-line CRLF caption to LF; each file now keeps its own, and --undo still puts each back."""
    from dbtui.cli import main

    files = {"a.txt": b"a photo of dog\r\nsitting on grass\r\n", "b.txt": b"a dog\r\n", "c.txt": b"a dog\nrunning\n",
             "d.txt": b"a dog"}
    for name, data in files.items():
        (tmp_path / name).with_suffix(".png").write_bytes(b"")
        (tmp_path / name).write_bytes(data)
    assert main(["dataset", "caption", str(tmp_path), "--replace", "dog", "cat"]) == 0, capsys.readouterr()
    assert {name: (tmp_path / name).read_bytes() for name in files} == {
        "a.txt": b"a photo of cat\r\nsitting on grass\r\n", "b.txt": b"a cat\r\n", "c.txt": b"a cat\nrunning\n",
        "d.txt": b"a cat\n"}
    assert main(["dataset", "caption", str(tmp_path), "--undo"]) == 0, capsys.readouterr()
    assert {name: (tmp_path / name).read_bytes() for name in files} == files
    captions.CaptionStore(tmp_path).write("b.png", "a new dog")  # the caption editor's save, as the bulk edits
    assert (tmp_path / "b.txt").read_bytes() == b"a new dog\r\n"


def test_an_edit_is_refused_by_the_size_of_the_bytes_it_writes_its_crlf_counted_as_two(tmp_path: Path, capsys) -> None:
    """A CRLF caption of exactly 64 KiB given one more character by --replace was judged as ending in "\\n" and written
    with "\\r\\n": 65,537 bytes, "1 caption(s) changed", which no reader then took (over 64 KiB). One that ends at the
    limit itself is written, and read back."""
    from dbtui.cli import main
    from engine.data.caption_text import MAX_CAPTION_BYTES, read_caption_file

    (tmp_path / "a.png").write_bytes(b"")
    caption = tmp_path / "a.txt"
    full = b"ab " + b"x" * (MAX_CAPTION_BYTES - 5) + b"\r\n"
    caption.write_bytes(full)
    assert main(["dataset", "caption", str(tmp_path), "--replace", "ab", "abc"]) == 2
    assert "65,537 bytes, over the 64 KiB" in capsys.readouterr().err and caption.read_bytes() == full
    with pytest.raises(CaptionError, match="65,537 bytes"):  # the caption editor's save
        captions.CaptionStore(str(tmp_path), ".txt").write("a.png", "abc " + "x" * (MAX_CAPTION_BYTES - 5))
    caption.write_bytes(full[1:])
    assert main(["dataset", "caption", str(tmp_path), "--replace", "b", "bc"]) == 0, capsys.readouterr()
    assert len(caption.read_bytes()) == MAX_CAPTION_BYTES and read_caption_file(caption).endswith("x\r\n")
