"""A caption file made read-only (chmod 0444), or a folder in its place, is left as it is, and said: a save wrote a
temporary file that replaced it, which the file's own permissions do not stop, so the wizard's Ctrl+S and `dbtui
dataset caption --add-tag` replaced it in silence (and it stayed read-only, holding text its owner never wrote)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
from dataset_fixture import textured
from textual.widgets import Static
from wizard_fakes import FakeEngine
from wizard_steps import until

from dbtui.app import make_app
from dbtui.cli import main
from dbtui.screens.captions import CaptionScreen
from dbtui.session import Session
from engine.dataset import CaptionError, CaptionStore


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for index, name in enumerate("ab"):
        textured(index, (32, 32)).save(tmp_path / f"{name}.jpg")
        (tmp_path / f"{name}.txt").write_text("photo of zwx\n", encoding="utf-8")
    os.chmod(tmp_path / "a.txt", 0o444)
    return tmp_path


@pytest.fixture
def says_a_photo(monkeypatch: pytest.MonkeyPatch) -> None:
    """autocaption's BLIP captioner replaced by one that says "a photo" of every picture."""

    class SaysAPhoto:
        def __init__(self, model: str) -> None:
            pass

        def __call__(self, pictures: list) -> list[str]:
            return ["a photo"] * len(pictures)

    monkeypatch.setattr(sys.modules["engine.dataset.autocaption"], "_Blip", SaysAPhoto)


def test_a_save_or_revert_is_refused_with_what_to_do(folder: Path) -> None:
    store = CaptionStore(folder)
    with pytest.raises(CaptionError, match=r"a\.txt' is read-only, so it is left as it is: .*chmod u\+w"):
        store.write("a.jpg", "zwx on grass")
    store.write("b.jpg", "zwx on grass")
    os.chmod(folder / "b.txt", 0o444)
    with pytest.raises(CaptionError, match="read-only"):
        store.revert("b.jpg")
    assert (folder / "a.txt").read_text() == "photo of zwx\n" and (folder / "b.txt").read_text() == "zwx on grass\n"


def test_a_bulk_edit_and_its_undo_leave_it_and_say_so(folder: Path, capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "1000")  # a long temporary path is not folded inside itself
    assert main(["dataset", "caption", str(folder), "--add-tag", "sks"]) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "1 caption(s) changed" in out and f"skipped caption file '{folder / 'a.txt'}' is read-only" in out
    assert (folder / "a.txt").read_text() == "photo of zwx\n"
    assert (folder / "b.txt").read_text() == "sks, photo of zwx\n"
    os.chmod(folder / "b.txt", 0o444)
    changes = CaptionStore(folder).undo()
    assert not changes.changes and [item.kind for item in changes.skipped] == ["read_only"]
    assert (folder / "b.txt").read_text() == "sks, photo of zwx\n"


def test_an_undo_keeps_what_it_skipped_as_read_only_for_a_later_undo(folder: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """The journal was deleted all the same: after chmod u+w, a second --undo said 'nothing to undo'."""
    os.chmod(folder / "a.txt", 0o644)
    textured(2, (32, 32)).save(folder / "c.jpg")
    (folder / "c.txt").write_text("photo of zwx\n", encoding="utf-8")
    assert main(["dataset", "caption", str(folder), "--add-tag", "sks"]) == 0
    os.chmod(folder / "a.txt", 0o444)
    (folder / "c.txt").write_text("edited by hand\n", encoding="utf-8")  # skipped as edited: not kept
    capsys.readouterr()
    assert main(["dataset", "caption", str(folder), "--undo"]) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "its undo is kept: make it writable (chmod u+w" in out and "then undo again (--undo" in out
    assert (folder / "a.txt").read_text() == "sks, photo of zwx\n" and (folder / "b.txt").read_text() == "photo of zwx\n"
    os.chmod(folder / "a.txt", 0o644)
    changes = CaptionStore(folder).undo()
    assert [change.path.name for change in changes.changes] == ["a.txt"] and not changes.skipped
    assert (folder / "a.txt").read_text() == "photo of zwx\n" and (folder / "c.txt").read_text() == "edited by hand\n"
    with pytest.raises(CaptionError, match="nothing to undo"):
        CaptionStore(folder).undo()


class RealCaptionsEngine(FakeEngine):
    def caption_store(self, folder: str, extension: str) -> CaptionStore:
        return CaptionStore(folder, extension)


async def test_the_wizard_says_why_it_is_not_saved(tmp_path: Path, demo_data: Path) -> None:
    images = Path(shutil.copytree(demo_data / "instance", tmp_path / "images"))
    app = make_app(RealCaptionsEngine(), Session(), image_renderer="none")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = CaptionScreen(app.session, app.engine, str(images), None)
        app.push_screen(screen)
        await pilot.pause()
        await until(pilot, lambda: screen.job is None and screen.image is not None)  # the first row's highlight too
        caption = screen.store.caption_file(screen.image)
        before = caption.read_bytes()
        os.chmod(caption, 0o444)
        screen.query_one("#cap-text").text = "zwx disc on grass"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert caption.read_bytes() == before
        status = " ".join(str(screen.query_one("#cap-status", Static).render()).split())
        assert "Not saved." in status and "is read-only" in status and "chmod u+w" in status


def test_autocaption_with_overwrite_leaves_it_and_names_it(folder: Path, says_a_photo: None) -> None:
    """--overwrite wrote the model's caption over it; now it is not captioned, with the reason, and the others are."""
    from engine.dataset.autocaption import autocaption

    result = autocaption(folder, backend="blip", model="unused", overwrite=True)
    assert [Path(p).name for p in result.written] == ["b.txt"]
    assert [(Path(p).name, "is read-only" in why) for p, why in result.failed] == [("a.jpg", True)]
    assert (folder / "a.txt").read_text() == "photo of zwx\n"


def test_a_folder_where_the_caption_file_would_be_is_named_not_a_temporary_file(folder: Path,
                                                                                 says_a_photo: None) -> None:
    """The save said "cannot write captions in ...: Is a directory (.../.c.txt.x1y2.tmp)": a file the user never made."""
    from engine.dataset.autocaption import autocaption

    textured(5, (32, 32)).save(folder / "c.jpg")
    (folder / "c.txt").mkdir()
    said = f"caption file '{folder / 'c.txt'}' is a folder, not a text file: move or rename that folder"
    with pytest.raises(CaptionError) as refused:
        CaptionStore(folder).write("c.jpg", "zwx on grass")
    assert str(refused.value).startswith(said) and ".tmp" not in str(refused.value)

    # --overwrite took it as no caption, and its write stopped the job
    result = autocaption(folder, backend="blip", model="unused", overwrite=True)
    assert [Path(p).name for p in result.written] == ["b.txt"]
    assert dict(result.failed)[str(folder / "c.jpg")].startswith(said)


def test_autocaption_without_overwrite_does_not_send_a_folder_to_overwrite(folder: Path, says_a_photo: None) -> None:
    """Without --overwrite a folder named c.txt was said as "not a regular file ... (or use --overwrite to replace
    it)", and --overwrite then refused it: no option replaces it, so it now says to move the folder at once."""
    from engine.dataset.autocaption import autocaption

    textured(5, (32, 32)).save(folder / "c.jpg")
    (folder / "c.txt").mkdir()
    result = autocaption(folder, backend="blip", model="unused", overwrite=False)
    why = dict(result.failed)[str(folder / "c.jpg")]
    assert why.startswith(f"caption file '{folder / 'c.txt'}' is a folder, not a text file: move or rename"), why
    assert "--overwrite" not in why
