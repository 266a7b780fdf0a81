"""The captions beside prepared copies: the user's are never replaced, and dbtui's are kept in the history first."""

from __future__ import annotations

from pathlib import Path

from dataset_fixture import textured

from engine.dataset import prepare_dataset
from engine.dataset.captions import HISTORY_DIR, ORIGINALS_DIR, CaptionStore


def _one_image(tmp_path: Path) -> tuple[Path, Path]:
    src, out = tmp_path / "pics", tmp_path / "pics-prepared"
    src.mkdir()
    textured(0, (80, 80)).save(src / "a.png")
    return src, out


def _prepare(src: Path, out: Path):
    return prepare_dataset(src, out, resolution=64, workers=1)


def test_a_caption_written_beside_a_copy_dbtui_gave_none_is_kept_when_the_original_gets_one(tmp_path: Path) -> None:
    src, out = _one_image(tmp_path)
    _prepare(src, out)
    CaptionStore(out).write("a.png", "my own words")
    (src / "a.txt").write_text("auto caption\n")
    again = _prepare(src, out)
    assert (out / "a.txt").read_text() == "my own words\n"
    assert again.edited_captions == (str(out / "a.txt"),) and again.captions_copied == 0
    assert (out / "a.txt").read_text() == "my own words\n" and _prepare(src, out).captions_copied == 0


def test_a_caption_edited_among_the_copies_stays_the_users_while_its_original_is_away(tmp_path: Path) -> None:
    src, out = _one_image(tmp_path)
    (src / "a.txt").write_text("orig\n")
    _prepare(src, out)
    (out / "a.txt").write_text("edited by me\n")
    (src / "a.txt").rename(tmp_path / "a.txt")
    away = _prepare(src, out)
    assert away.stale_captions == () and (out / "a.txt").read_text() == "edited by me\n"
    (tmp_path / "a.txt").rename(src / "a.txt")
    back = _prepare(src, out)
    assert (out / "a.txt").read_text() == "edited by me\n"
    assert back.edited_captions == (str(out / "a.txt"),) and back.captions_copied == 0


def test_a_caption_prepare_replaces_is_kept_in_the_prepared_folders_history(tmp_path: Path) -> None:
    src, out = _one_image(tmp_path)
    (src / "a.txt").write_text("first\n")
    _prepare(src, out)
    (src / "a.txt").write_text("second\n")
    assert _prepare(src, out).captions_copied == 1 and (out / "a.txt").read_text() == "second\n"
    assert (out / HISTORY_DIR / "a.txt").read_text() == "first\n"
    assert (out / HISTORY_DIR / ORIGINALS_DIR / "a.txt").read_text() == "first\n"
    assert CaptionStore(out).revert("a.png") and (out / "a.txt").read_text() == "first\n"


def test_a_caption_changed_since_is_copied_again_into_a_folder_named_relatively(tmp_path: Path, monkeypatch) -> None:
    """`dbtui dataset prepare photos/ prepared/` run again after a caption changed in photos/ ended in "unexpected
    error (ValueError: 'prepared/a.txt' is not in the subpath of '/…/prepared')", status 3: the copy's caption
    history was found from the relative path."""
    from dbtui.cli import main

    src, _ = _one_image(tmp_path)
    monkeypatch.chdir(tmp_path)
    (src / "a.txt").write_text("first\n")
    assert main(["dataset", "prepare", "pics/", "prepared/", "--resolution", "64", "--workers", "1"]) == 0
    (src / "a.txt").write_text("second\n")
    assert main(["dataset", "prepare", "pics/", "prepared/", "--resolution", "64", "--workers", "1"]) == 0
    assert Path("prepared/a.txt").read_text() == "second\n"
    assert Path("prepared", HISTORY_DIR, ORIGINALS_DIR, "a.txt").read_text() == "first\n"


def test_prepare_says_once_which_captions_another_extension_left_behind_and_how_to_use_them(
        tmp_path: Path, monkeypatch, capsys) -> None:
    """`prepare --caption-extension .caption` of images captioned in .txt copied no caption and said nothing of them:
    the copies trained without their captions."""
    from dbtui.cli import main

    src, out = _one_image(tmp_path)
    textured(1, (80, 80)).save(src / "b.png")
    for name in ("a", "b"):
        (src / f"{name}.txt").write_text("zwx dog\n")
    assert main(["dataset", "prepare", str(src), str(out), "--resolution", "64", "--workers", "1",
                 "--caption-extension", ".caption"]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert said.count("captions not used") == 1
    assert (f"2 .txt caption(s) beside the images (such as {src / 'a.txt'}) were not copied: prepare reads .caption "
            "captions, and no image has one; to copy those, give --caption-extension .txt and prepare again") in said
    (src / "a.caption").write_text("zwx\n")  # one of the chosen extension: the .txt ones are the user's choice
    assert _prepare_with(src, tmp_path / "again", ".caption").other_captions == ("", ())
    assert _prepare_with(src, tmp_path / "txt", ".txt").other_captions == ("", ())


def _prepare_with(src: Path, out: Path, extension: str):
    return prepare_dataset(src, out, resolution=64, workers=1, caption_extension=extension)
