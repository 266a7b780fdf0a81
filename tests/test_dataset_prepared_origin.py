"""A prepared folder knows its originals: preparing it again prepares them (never copies of the copies, cropped and
resized twice), and the captions edited among the copies since are kept, not replaced by the originals'."""

from __future__ import annotations

from pathlib import Path

import pytest
from dataset_fixture import textured

from dbtui.cli import main
from engine.dataset import DatasetError, prepare_dataset, prepare_paths, prepared_from
from engine.dataset.prepared_origin import ORIGIN_RECORD


def _originals(tmp_path: Path) -> Path:
    src = tmp_path / "pics"
    src.mkdir()
    for i in range(2):
        textured(i, (80, 80)).save(src / f"{i}.jpg")
        (src / f"{i}.txt").write_text(f"zwx dog {i}\n")
    return src


def test_a_prepared_folder_names_its_originals_and_is_not_prepared_itself(tmp_path: Path) -> None:
    src = _originals(tmp_path)
    out = tmp_path / "pics-prepared"
    prepare_dataset(src, out, resolution=64, workers=1)
    assert prepared_from(out) == src and prepared_from(src) is None
    with pytest.raises(DatasetError, match=f"holds copies dbtui prepared from {src}: .* prepare {src} instead"):
        prepare_dataset(out, tmp_path / "pics-prepared-prepared", resolution=64, workers=1)
    assert not (tmp_path / "pics-prepared-prepared").exists()


def test_copies_whose_originals_are_gone_can_be_prepared(tmp_path: Path) -> None:
    """With the originals deleted, the copies are all the user has: they are prepared as any folder."""
    src = _originals(tmp_path)
    out = tmp_path / "pics-prepared"
    prepare_dataset(src, out, resolution=64, workers=1)
    for file in src.iterdir():
        file.unlink()
    src.rmdir()
    assert prepared_from(out) is None
    assert len(prepare_dataset(out, tmp_path / "again", resolution=64, workers=1).written) == 2


def test_a_caption_edited_among_the_copies_is_kept_and_named(tmp_path: Path) -> None:
    src = _originals(tmp_path)
    out = tmp_path / "pics-prepared"
    prepare_dataset(src, out, resolution=64, workers=1)
    (out / "0.txt").write_text("zwx dog, edited among the copies\n")
    (src / "0.txt").write_text("zwx dog, the original changed too\n")
    (src / "1.txt").write_text("zwx dog, only the original changed\n")
    again = prepare_dataset(src, out, resolution=64, workers=1)
    assert (out / "0.txt").read_text() == "zwx dog, edited among the copies\n"
    assert (out / "1.txt").read_text() == "zwx dog, only the original changed\n"
    assert again.edited_captions == (str(out / "0.txt"),) and again.captions_copied == 1
    (out / "0.txt").unlink()  # the way back to the original's text
    assert prepare_dataset(src, out, resolution=64, workers=1).captions_copied == 1
    assert (out / "0.txt").read_text() == "zwx dog, the original changed too\n"


def test_the_cli_refuses_to_prepare_copies_and_names_captions_it_kept(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "400")  # Rich folds long paths at 80 columns when piped
    src = _originals(tmp_path)
    out = tmp_path / "pics-prepared"
    assert main(["dataset", "prepare", str(src), str(out), "--resolution", "64"]) == 0
    assert main(["dataset", "prepare", str(out), str(tmp_path / "twice"), "--resolution", "64"]) == 2
    assert f"holds copies dbtui prepared from {src}" in " ".join(capsys.readouterr().err.split())
    (out / "1.txt").write_text("zwx dog, mine\n")
    (src / "1.txt").write_text("zwx dog, theirs\n")
    assert main(["dataset", "prepare", str(src), str(out), "--resolution", "64"]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert f"caption kept {out / '1.txt'}: written or edited there since dbtui prepared it" in said


def test_a_folder_of_the_users_own_images_is_not_marked_as_copies(tmp_path: Path, capsys, monkeypatch) -> None:
    """Marked, it was refused as copies, and the wizard prepared the other folder into it."""
    monkeypatch.setenv("COLUMNS", "400")
    src = _originals(tmp_path)
    mine = tmp_path / "mine"
    mine.mkdir()
    textured(5, (80, 80)).save(mine / "own.jpg")
    result = prepare_dataset(src, mine, resolution=64, workers=1)
    assert prepared_from(mine) is None and f"{mine} already held files" in result.origin_not_recorded
    assert len(result.written) == 2 and (mine / "own.jpg").exists()
    assert main(["dataset", "prepare", str(mine), str(tmp_path / "mine-prepared"), "--resolution", "64"]) == 0
    assert main(["dataset", "prepare", str(src), str(mine), "--resolution", "64"]) == 0
    assert "not marked as copies" in " ".join(capsys.readouterr().out.split())


def test_a_record_naming_another_folder_is_not_replaced_and_an_empty_folder_is_marked(tmp_path: Path) -> None:
    src = _originals(tmp_path)
    out = tmp_path / "pics-prepared"
    prepare_dataset(src, out, resolution=64, workers=1)
    (out / ORIGIN_RECORD).unlink()  # as a folder an earlier dbtui prepared: its copies, their captions, a manifest
    assert prepare_dataset(src, out, resolution=64, workers=1).origin_not_recorded == "" and prepared_from(out) == src
    other = tmp_path / "other"
    other.mkdir()
    textured(7, (80, 80)).save(other / "x.jpg")
    result = prepare_dataset(other, out, resolution=64, workers=1)
    assert prepared_from(out) == src and f"holds copies prepared from {src}" in result.origin_not_recorded
    assert prepare_dataset(src, out, resolution=64, workers=1).origin_not_recorded == ""
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / ".DS_Store").write_text("")
    assert prepare_dataset(src, empty, resolution=64, workers=1).origin_not_recorded == ""
    assert prepared_from(empty) == src


def test_a_folder_prepared_before_folders_were_marked_is_known_by_its_manifest(tmp_path: Path) -> None:
    """Its Prepare made "pics-prepared-prepared" (the copies cropped twice) and never saw new originals."""
    src = _originals(tmp_path)
    (src / "sub").mkdir()
    textured(3, (80, 80)).save(src / "sub" / "3.jpg")
    out = tmp_path / "pics-prepared"
    prepare_dataset(src, out, resolution=64, recursive=True, workers=1)
    (out / ORIGIN_RECORD).unlink()
    assert prepared_from(out) == src.resolve()
    assert prepare_paths(out) == (src.resolve(), out)
    with pytest.raises(DatasetError, match="holds copies dbtui prepared from"):
        prepare_dataset(out, tmp_path / "pics-prepared-prepared", resolution=64, workers=1)
    textured(4, (80, 80)).save(src / "4.jpg")
    again = prepare_dataset(*prepare_paths(out), resolution=64, recursive=True, workers=1)
    assert again.written == (str(out / "4.png"),) and (out / ORIGIN_RECORD).exists()


def test_an_unmarked_folder_is_not_taken_for_copies_unless_it_holds_only_one_folders(tmp_path: Path) -> None:
    src = _originals(tmp_path)
    out = tmp_path / "pics-prepared"
    prepare_dataset(src, out, resolution=64, workers=1)
    (out / ORIGIN_RECORD).unlink()
    textured(5, (80, 80)).save(out / "own.jpg")  # the user's own picture among the copies
    assert prepared_from(out) is None
    (out / "own.jpg").unlink()
    other = tmp_path / "other"
    other.mkdir()
    textured(7, (80, 80)).save(other / "x.jpg")
    prepare_dataset(other, out, resolution=64, workers=1)  # copies of a second folder join the first's
    assert prepared_from(out) is None
