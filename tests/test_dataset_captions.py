"""CaptionStore: atomic writes that keep the previous version, bulk edits, undo, frequencies."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from dataset_fixture import textured

from engine.dataset import CaptionError, CaptionStore, training_caption
from engine.dataset.captions import HISTORY_DIR

CAPTIONS = {"a": "ohwx, dog,  on grass ", "b": "dog, dog, ohwx,, sky", "c": None, "d": "a photo of a dog"}


@pytest.fixture
def store(tmp_path: Path) -> CaptionStore:
    for i, (name, caption) in enumerate(CAPTIONS.items()):
        textured(i, (32, 32)).save(tmp_path / f"{name}.jpg")
        if caption is not None:
            (tmp_path / f"{name}.txt").write_text(caption + "\n", encoding="utf-8")
    return CaptionStore(tmp_path)


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.glob("*.txt")}


def test_read_write_round_trip_keeps_the_previous_version(store: CaptionStore) -> None:
    assert store.read("c.jpg") is None
    store.write("c.jpg", "  a cat  ")
    assert store.read("c.jpg") == "a cat" and store.previous("c.jpg") is None
    store.write("c.jpg", "a black cat")
    assert store.read(store.folder / "c.jpg") == "a black cat"
    assert store.previous("c.jpg") == "a cat\n"
    assert not [p for p in store.folder.iterdir() if p.name.endswith(".tmp")]
    assert (store.folder / HISTORY_DIR).is_dir() and len(store.images()) == 4  # the history is not an image folder


def test_interrupted_write_leaves_the_old_caption_intact(store: CaptionStore, monkeypatch) -> None:
    original = (store.folder / "a.txt").read_bytes()

    def power_cut(*args):
        raise OSError("disk pulled out")

    monkeypatch.setattr(os, "fsync", power_cut)
    with pytest.raises(CaptionError, match="cannot write captions in .*: disk pulled out"):  # said, not a traceback
        store.write("a.jpg", "something new")
    assert (store.folder / "a.txt").read_bytes() == original
    assert not [p for p in store.folder.rglob("*") if p.name.endswith(".tmp")]


def test_interrupted_bulk_operation_can_still_be_undone(store: CaptionStore, monkeypatch) -> None:
    before = _files(store.folder)
    real_replace = os.replace
    calls = []

    def fail_on_third(source, target):
        calls.append(target)
        if len([c for c in calls if str(c).endswith(".txt") and HISTORY_DIR not in str(c)]) == 2:
            raise OSError("killed")
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", fail_on_third)
    with pytest.raises(CaptionError, match="killed"):
        store.add_tag("new")
    monkeypatch.setattr(os, "replace", real_replace)
    CaptionStore(store.folder).undo()
    assert _files(store.folder) == before


def test_add_tag_leaves_captions_that_already_say_it_as_a_word(tmp_path: Path) -> None:
    captions = {"sentence": "a photo of OHWX dog", "inside": "ohwxy dog", "tag": "dog, ohwx"}
    for i, (name, caption) in enumerate(captions.items()):
        textured(i, (32, 32)).save(tmp_path / f"{name}.jpg")
        (tmp_path / f"{name}.txt").write_text(caption + "\n", encoding="utf-8")
    changes = CaptionStore(tmp_path).add_tag("ohwx")
    assert [c.path.stem for c in changes.changes] == ["inside"]  # "ohwxy" is another word
    assert CaptionStore(tmp_path).read("sentence.jpg") == "a photo of OHWX dog"


def test_a_tag_added_to_a_caption_of_a_second_byte_order_mark_alone_is_the_whole_caption(tmp_path: Path) -> None:
    """A caption file holding its BOM twice reads as empty to the check and training, but a bulk add-tag kept the
    invisible mark as a tag: 'sks, \ufeff' trained with a trailing comma and the check no longer called it empty."""
    textured(0, (32, 32)).save(tmp_path / "a.jpg")
    (tmp_path / "a.txt").write_bytes(b"\xef\xbb\xbf\xef\xbb\xbf\n")
    CaptionStore(tmp_path).add_tag("sks")
    assert (tmp_path / "a.txt").read_bytes() == b"sks\n"


@pytest.mark.parametrize(
    ("operation", "expected"),
    [
        # A caption that says the tag already is left as written (its spacing too): only trim tidies that.
        (lambda s: s.add_tag("ohwx"), {"a": "ohwx, dog,  on grass", "b": "dog, dog, ohwx,, sky", "c": "ohwx",
                                       "d": "ohwx, a photo of a dog"}),
        (lambda s: s.add_tag("best", front=False), {"a": "ohwx, dog, on grass, best", "b": "dog, dog, ohwx, sky, best",
                                                    "c": "best", "d": "a photo of a dog, best"}),
        (lambda s: s.remove_tag("dog"), {"a": "ohwx, on grass", "b": "ohwx, sky", "d": "a photo of a dog"}),
        (lambda s: s.replace("dog", "cat"), {"a": "ohwx, cat,  on grass", "b": "cat, cat, ohwx,, sky",
                                             "d": "a photo of a cat"}),
        (lambda s: s.replace(r"\bo(\w+)", r"O\1", regex=True), {"a": "Ohwx, dog,  On grass", "b": "dog, dog, Ohwx,, sky",
                                                               "d": "a photo Of a dog"}),
        (lambda s: s.dedupe_tags(), {"a": "ohwx, dog,  on grass", "b": "dog, ohwx, sky", "d": "a photo of a dog"}),
        (lambda s: s.trim(), {"a": "ohwx, dog, on grass", "b": "dog, dog, ohwx, sky", "d": "a photo of a dog"}),
    ],
)
def test_bulk_operations_and_their_undo(store: CaptionStore, operation, expected: dict[str, str]) -> None:
    before = _files(store.folder)
    changes = operation(store)
    assert {name: store.read(f"{name}.jpg") for name in expected} == expected
    assert {c.path.stem for c in changes.changes} == {n for n in expected if (CAPTIONS[n] or "").strip() != expected[n]}
    undone = CaptionStore(store.folder).undo()  # a new session can undo too
    assert _files(store.folder) == before  # byte for byte, files created by add_tag removed
    assert len(undone) == len(changes)
    with pytest.raises(CaptionError, match="nothing to undo: undo puts back the last bulk caption operation only.*undone already"):
        store.undo()


def test_tag_frequency_counts_captions_not_repeats(store: CaptionStore) -> None:
    assert store.tag_frequency()[:2] == [("dog", 2), ("ohwx", 2)]
    assert dict(store.tag_frequency())["on grass"] == 1


def test_training_caption_follows_the_caption_mode(store: CaptionStore) -> None:
    a, c = store.folder / "a.jpg", store.folder / "c.jpg"
    prompt = "photo of ohwx dog"
    assert training_caption(a, "instance_prompt", prompt) == prompt
    assert training_caption(a, "caption_file", prompt) == "ohwx, dog,  on grass"
    assert training_caption(c, "caption_file", prompt) is None
    assert training_caption(c, "caption_file_then_prompt", prompt) == prompt
    assert training_caption(a, "caption_file_then_prompt", prompt) == "ohwx, dog,  on grass, " + prompt
    assert training_caption(a, "prompt_then_caption_file", prompt) == prompt + ", ohwx, dog,  on grass"
    assert training_caption(a, "file_name", prompt) == "a"


def test_a_folder_given_relative_to_the_working_directory_is_edited_and_undone(
        store: CaptionStore, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The README's own example, `dbtui dataset caption photos/ --add-tag ohwx`, names the folder relatively."""
    from dbtui.cli import main

    folder = store.folder
    monkeypatch.chdir(folder.parent)
    assert main(["dataset", "caption", f"{folder.name}/", "--frequency"]) == 0
    assert "     2  dog" in capsys.readouterr().out
    assert main(["dataset", "caption", folder.name, "--add-tag", "zwx"]) == 0
    assert "3 caption(s) changed, 1 created for images that had no caption file" in capsys.readouterr().out
    assert main(["dataset", "caption", folder.name, "--replace", "dog", "cat"]) == 0
    assert "3 caption(s) changed" in capsys.readouterr().out
    assert CaptionStore(folder).read("b.jpg") == "zwx, cat, cat, ohwx, sky"
    monkeypatch.chdir(folder)  # the journal holds absolute paths, so undo works from anywhere
    assert main(["dataset", "caption", ".", "--undo"]) == 0
    assert "3 caption(s) changed" in capsys.readouterr().out
    assert CaptionStore(folder).read("b.jpg") == "zwx, dog, dog, ohwx, sky"
    monkeypatch.chdir(folder.parent)
    assert main(["dataset", "caption", folder.name, "--remove-tag", "zwx"]) == 0
    assert "4 caption(s) changed" in capsys.readouterr().out
    assert CaptionStore(folder).read("c.jpg") == ""


def test_a_folder_that_cannot_be_written_is_said_so_and_nothing_changes(store: CaptionStore, monkeypatch,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """As a user without write access meets it (root writes anyway, so the refusal is the OS's own error)."""
    import errno

    from dbtui.cli import main
    from engine.dataset import captions

    before = {path.name: path.read_bytes() for path in store.folder.glob("*.txt")}

    def refused(path, data) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(captions, "atomic_write_bytes", refused)
    assert main(["dataset", "caption", str(store.folder), "--add-tag", "zwx"]) == 2
    err = capsys.readouterr().err
    assert f"cannot write captions in {store.folder}: Permission denied" in err and "ls -ld" in err
    assert {path.name: path.read_bytes() for path in store.folder.glob("*.txt")} == before


def test_undo_of_a_mistyped_folder_says_it_is_no_folder(store: CaptionStore) -> None:
    """`--undo` of a folder not there said "nothing to undo ... none was done here, or the last one is undone
    already", so one who mistyped the folder took the edit for one that cannot be undone."""
    from engine.dataset import DatasetError

    store.add_tag("zwx")
    with pytest.raises(DatasetError, match=r"photos is not a folder: give the folder"):
        CaptionStore(store.folder.parent / "photos").undo()
    with pytest.raises(DatasetError, match=r"a\.jpg is a file, not a folder: give the folder that holds it"):
        CaptionStore(store.folder / "a.jpg").undo()
    assert len(store.undo()) == 4


def test_undo_keeps_captions_edited_by_hand_since_the_bulk_edit(store: CaptionStore) -> None:
    store.add_tag("zwx")
    (store.folder / "a.txt").write_text("my careful hand edit\n", encoding="utf-8")  # edited after the bulk edit
    (store.folder / "c.txt").write_text("zwx, written by hand\n", encoding="utf-8")  # created by it, then edited
    undone = CaptionStore(store.folder).undo()
    assert store.read("a.jpg") == "my careful hand edit" and store.read("c.jpg") == "zwx, written by hand"
    assert sorted(item.path.name for item in undone.skipped) == ["a.txt", "c.txt"]
    assert all("edited since the bulk operation" in item.reason and item.kind == "edited" for item in undone.skipped)
    assert store.read("b.jpg") == CAPTIONS["b"].strip() and store.read("d.jpg") == CAPTIONS["d"]  # the others go back


def test_undo_names_each_caption_it_keeps(store: CaptionStore, capsys, monkeypatch) -> None:
    """The command said "skipped edited since the bulk operation, …" without saying which file."""
    from dbtui.cli import main

    monkeypatch.setenv("COLUMNS", "400")  # the path on one line
    store.add_tag("zwx")
    (store.folder / "a.txt").write_text("my careful hand edit\n", encoding="utf-8")
    assert main(["dataset", "caption", str(store.folder), "--undo"]) == 1
    said = " ".join(capsys.readouterr().out.split())
    assert f"skipped caption file '{store.folder / 'a.txt'}' was edited since the bulk operation" in said


def test_a_bulk_edit_that_changes_nothing_leaves_the_undo_of_the_one_before(store: CaptionStore, capsys) -> None:
    """--remove-tag with a typo rewrote the journal with 0 changes, so the --add-tag before it could not be undone."""
    from dbtui.cli import main

    before = _files(store.folder)
    assert main(["dataset", "caption", str(store.folder), "--add-tag", "zwx"]) == 0
    capsys.readouterr()
    assert main(["dataset", "caption", str(store.folder), "--remove-tag", "ohxw"]) == 0  # a typo: matches nothing
    said = capsys.readouterr().out
    assert "0 caption(s) changed" in said and "--undo" not in said  # nothing to revert, so no hint
    undone = CaptionStore(store.folder).undo()
    assert undone.operation == "undo add tag 'zwx'" and _files(store.folder) == before


def test_a_copied_folder_undoes_its_own_captions(store: CaptionStore, tmp_path: Path) -> None:
    import shutil

    store.add_tag("zwx")
    copy = Path(shutil.copytree(store.folder, tmp_path.parent / f"{tmp_path.name}-copy"))
    undone = CaptionStore(copy).undo()
    assert len(undone) == 4 and not undone.skipped
    assert CaptionStore(copy).read("a.jpg") == CAPTIONS["a"].strip() and not (copy / "c.txt").exists()
    assert store.read("a.jpg").startswith("zwx")  # the original folder's edit is its own to undo


def test_a_caption_named_but_for_letter_case_or_accent_encoding_is_named_with_the_rename(tmp_path: Path) -> None:
    """Linux tells Photo.txt from photo.txt, and é from e + accent (as macOS writes names): the doctor said the caption
    was missing, and that another caption had no image, without saying they belong together."""
    import unicodedata

    from PIL import Image

    from engine.dataset import check_dataset

    for stem in ("Photo", unicodedata.normalize("NFC", "café")):
        Image.new("RGB", (64, 64), (90, 90, 90)).save(tmp_path / f"{stem}.png")
    (tmp_path / "photo.txt").write_text("a photo of zwx dog")
    (tmp_path / unicodedata.normalize("NFD", "café.txt")).write_text("zwx dog at a café")
    report = check_dataset(tmp_path, resolution=64, caption_mode="caption_file", workers=1)
    found = {Path(f.path).name: f for f in report.findings if f.code.startswith("caption")}
    assert set(found) == {"Photo.png", unicodedata.normalize("NFC", "café.png")}  # and no orphan caption
    photo = found["Photo.png"]
    assert photo.code == "caption_misnamed" and photo.severity == "error"
    assert "differs in letter case" in photo.message and photo.fix == "rename photo.txt to Photo.txt"
    assert "how its accented letters are encoded" in found[unicodedata.normalize("NFC", "café.png")].message


def test_a_caption_link_to_a_missing_file_is_left_alone_and_named(store: CaptionStore) -> None:
    """--add-tag replaced the link with a file of the tag, and --undo then deleted that file: the link was lost."""
    link = store.folder / "c.txt"
    link.symlink_to("captions/c-caption.txt")
    changes = store.add_tag("zwx")
    assert os.readlink(link) == "captions/c-caption.txt"
    assert [item.path for item in changes.skipped] == [link]
    assert "is a symbolic link to 'captions/c-caption.txt', which does not exist" in changes.skipped[0].reason
    CaptionStore(store.folder).undo()
    assert os.readlink(link) == "captions/c-caption.txt"


def _original(store: CaptionStore, name: str) -> Path:
    from engine.dataset.captions import ORIGINALS_DIR

    return store.folder / HISTORY_DIR / ORIGINALS_DIR / name


def test_the_first_version_is_kept_byte_for_byte_through_any_number_of_saves_and_bulk_edits(store: CaptionStore) -> None:
    """One backup per caption was overwritten by each save: after two saves (moving to another image saves too) the
    user's own caption, and its encoding, were gone."""
    mine = "zwx, café".encode("utf-16")
    (store.folder / "a.txt").write_bytes(mine)
    store.write("a.jpg", "first edit")
    store.write("a.jpg", "second edit")
    store.add_tag("ohwx")
    store.remove_tag("ohwx")
    assert _original(store, "a.txt").read_bytes() == mine
    assert store.previous("a.jpg") == "ohwx, second edit\n"  # what F2 needs: the version the last write replaced
    assert _original(store, "b.txt").read_text(encoding="utf-8") == CAPTIONS["b"] + "\n"


def test_a_history_kept_before_originals_were_gives_its_older_version_as_the_original(store: CaptionStore) -> None:
    (store.folder / HISTORY_DIR).mkdir()
    (store.folder / HISTORY_DIR / "a.txt").write_bytes(b"the oldest known\n")  # the layout of earlier versions
    store.write("a.jpg", "newest")
    assert _original(store, "a.txt").read_bytes() == b"the oldest known\n"
    assert store.previous("a.jpg") == CAPTIONS["a"] + "\n"


def test_revert_swaps_the_bytes_whatever_the_encoding(store: CaptionStore) -> None:
    """F2 decoded the kept version as UTF-8, so a Latin-1 caption could not be put back."""
    latin = "zwx café".encode("latin-1")
    (store.folder / "a.txt").write_bytes(latin)
    store.write("a.jpg", "zwx cafe, typed")
    assert store.revert("a.jpg")
    assert (store.folder / "a.txt").read_bytes() == latin
    assert store.revert("a.jpg")  # again: the newer one
    assert store.read("a.jpg") == "zwx cafe, typed"
    assert _original(store, "a.txt").read_bytes() == latin
    assert not store.revert("c.jpg")  # no earlier version


def test_remove_tag_ignores_letter_case_as_add_tag_does_and_names_sentences_that_still_say_it(store: CaptionStore) -> None:
    (store.folder / "a.txt").write_text("OHWX, dog\n", encoding="utf-8")
    (store.folder / "d.txt").write_text("a photo of Ohwx dog, ohwx\n", encoding="utf-8")
    changes = store.remove_tag("ohwx")
    assert store.read("a.jpg") == "dog" and store.read("d.jpg") == "a photo of Ohwx dog"
    assert store.read("b.jpg") == "dog, dog, sky"
    assert changes.skipped == ()  # d.txt was changed too: not "left as it was"
    assert [item.path.name for item in changes.still_said] == ["d.txt"]
    assert "'ohwx' is still said inside a longer tag" in changes.still_said[0].reason


def test_bulk_edits_and_undo_say_their_progress(store: CaptionStore) -> None:
    from engine.events import PhaseProgress, PhaseStarted

    events: list = []
    store.add_tag("zwx", emit=events.append)
    assert [(e.phase, e.total) for e in events if isinstance(e, PhaseStarted)] == [("caption_images", 1), ("captions", 4)]
    assert [e.done for e in events if isinstance(e, PhaseProgress) and e.phase == "captions"] == [1, 2, 3, 4]
    events.clear()
    store.undo(emit=events.append)
    assert isinstance(events[0], PhaseStarted) and (events[-1].done, events[-1].total) == (4, 4)


def test_a_caption_file_two_images_share_is_edited_once_and_undone(tmp_path: Path, capsys) -> None:
    """a.jpg and a.png share a.txt: --add-tag said 2 changed, its history kept the half-edited text, and --undo
    called it edited since."""
    from dbtui.cli import main

    textured(1, (32, 32)).save(tmp_path / "a.jpg")
    textured(2, (32, 32)).save(tmp_path / "a.png")
    (tmp_path / "a.txt").write_text("dog\n", encoding="utf-8")
    assert main(["dataset", "caption", str(tmp_path), "--add-tag", "zzz"]) == 0
    assert "1 caption(s) changed" in capsys.readouterr().out
    store = CaptionStore(tmp_path)
    assert store.read("a.jpg") == "zzz, dog" and store.previous("a.png") == "dog\n"
    assert [item.path.name for item in store.unreadable()] == []
    assert store.tag_frequency() == [("dog", 1), ("zzz", 1)]
    assert main(["dataset", "caption", str(tmp_path), "--undo"]) == 0
    assert "1 caption(s) changed" in capsys.readouterr().out and store.read("a.png") == "dog"
    store.add_tag("zzz")
    assert store.revert("a.jpg") and store.read("a.jpg") == "dog"


def test_a_missing_caption_two_images_share_is_created_once(tmp_path: Path) -> None:
    textured(1, (32, 32)).save(tmp_path / "a.jpg")
    textured(2, (32, 32)).save(tmp_path / "a.png")
    changes = CaptionStore(tmp_path).add_tag("zzz")
    assert (len(changes), changes.created) == (1, 1) and (tmp_path / "a.txt").read_text() == "zzz\n"
    (tmp_path / "a.txt").write_bytes(b"caf\xe9")  # Latin-1: not UTF-8
    assert len(CaptionStore(tmp_path).unreadable()) == 1


def test_a_missing_caption_is_created_when_any_image_sharing_it_is_a_picture(tmp_path: Path) -> None:
    """a.jpg (a saved web page) and a.png (a picture) share a.txt: --add-tag probed a.jpg alone, created no a.txt,
    and the picture a.png trained with no caption."""
    (tmp_path / "a.jpg").write_text("<!DOCTYPE html><html><body>404</body></html>")
    textured(2, (32, 32)).save(tmp_path / "a.png")
    (tmp_path / "b.jpg").write_bytes(b"")
    (tmp_path / "b.png").write_bytes(b"")
    changes = CaptionStore(tmp_path).add_tag("zzz")
    assert changes.created == 1 and (tmp_path / "a.txt").read_text() == "zzz\n"
    assert not (tmp_path / "b.txt").exists()
    [skipped] = changes.skipped
    assert skipped.path == tmp_path / "b.txt" and "'" + str(tmp_path / "b.png") + "' is not an image" in skipped.reason
    assert skipped.reason.endswith("so no caption file was created for them (`dbtui dataset check` says what to do)")


def test_add_tag_creates_no_caption_beside_a_file_that_is_not_an_image(store: CaptionStore) -> None:
    """--add-tag wrote a caption beside an empty file, a web page and a truncated JPEG, which the doctor calls no image."""
    (store.folder / "empty.jpg").write_bytes(b"")
    (store.folder / "page.png").write_text("<!DOCTYPE html><html><body>404</body></html>")
    jpeg = (store.folder / "a.jpg").read_bytes()
    (store.folder / "cut.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    changes = store.add_tag("zwx")
    for name in ("empty", "page", "cut"):
        assert not (store.folder / f"{name}.txt").exists(), name
    reasons = sorted(item.reason for item in changes.skipped)
    assert len(reasons) == 3 and all("so no caption file was created for it" in reason for reason in reasons)
    assert f"'{store.folder / 'empty.jpg'}' is not an image: it is an empty file (0 bytes)" in reasons[1]
    assert changes.created == 1 and store.read("c.jpg") == "zwx"  # a real picture still gets its caption
    store.undo()
    assert store.read("c.jpg") is None


def test_add_tag_leaves_an_image_whose_caption_is_named_but_for_case_and_says_so(store: CaptionStore, capsys,
                                                                                  monkeypatch) -> None:
    """--add-tag created a.txt beside a.TXT: training then read the tag alone, and the doctor's error went away."""
    from dbtui.cli import main

    monkeypatch.setenv("COLUMNS", "400")  # the path on one line
    (store.folder / "a.txt").rename(store.folder / "a.TXT")
    assert store.misnamed() == {store.folder / "a.txt": store.folder / "a.TXT"}
    assert main(["dataset", "caption", str(store.folder), "--add-tag", "zwx"]) == 1
    said = " ".join(capsys.readouterr().out.split())
    assert "1 created for images that had no caption file" in said  # c.jpg's, which has none at all
    assert f"skipped caption file '{store.folder / 'a.TXT'}' differs from a.txt only in letter case" in said
    assert not (store.folder / "a.txt").exists()
    assert (store.folder / "a.TXT").read_text(encoding="utf-8") == CAPTIONS["a"] + "\n"


@pytest.mark.parametrize("edit", [lambda s: s.replace("dog", "x" * 70_000), lambda s: s.add_tag("y" * 70_000),
                                  lambda s: s.write("a.jpg", "z" * 70_000)], ids=["replace", "add_tag", "write"])
def test_an_edit_that_would_make_a_caption_too_big_to_read_changes_nothing(store: CaptionStore, edit) -> None:
    # Written, such a caption would be one no reader takes (training, the check, undo): undo left it behind.
    before = _files(store.folder)
    with pytest.raises(CaptionError, match="64 KiB"):
        edit(store)
    assert _files(store.folder) == before


def test_dedupe_drops_a_tag_repeated_in_another_letter_case_or_spacing_as_remove_tag_finds_it(tmp_path: Path) -> None:
    """--dedupe left 'dog, Dog' and 'a photo of zwx, a  photo of zwx' as they were (0 changed), though --remove-tag dog
    takes both spellings out, and the text encoder reads them alike."""
    textured(0, (32, 32)).save(tmp_path / "a.jpg")
    (tmp_path / "a.txt").write_text("dog, Dog, a photo of zwx, ohwx, a  photo of ZWX\n", encoding="utf-8")
    assert len(CaptionStore(tmp_path).dedupe_tags()) == 1
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "dog, a photo of zwx, ohwx\n"


def test_undo_says_the_captions_it_removed_apart_from_those_it_changed(tmp_path: Path, capsys) -> None:
    """--undo of an --add-tag that had created b.txt removed it, and said '2 caption(s) changed'."""
    from dbtui.cli import main

    for index, name in enumerate(("a.png", "b.png")):
        textured(index, (32, 32)).save(tmp_path / name)
    (tmp_path / "a.txt").write_text("dog\n", encoding="utf-8")
    assert main(["dataset", "caption", str(tmp_path), "--add-tag", "zwx"]) == 0
    assert "1 caption(s) changed, 1 created for images that had no caption file" in capsys.readouterr().out
    assert main(["dataset", "caption", str(tmp_path), "--undo"]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert "undo add tag 'zwx': 1 caption(s) changed, 1 removed (made by the edit undone)" in said
    assert not (tmp_path / "b.txt").exists() and CaptionStore(tmp_path).read("a.png") == "dog"
    from engine.dataset.caption_changes import Change, ChangeSet

    restored = ChangeSet("undo remove tag 'dog'", (Change(tmp_path / "c.txt", None, "dog"),), undo=True)
    assert restored.counts_said("had no caption file") == "0 caption(s) changed, 1 restored"
