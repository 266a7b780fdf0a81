"""A prepared folder knows its originals: preparing it again prepares them (never copies of the copies, cropped and
resized twice), and the captions edited among the copies since are kept, not replaced by the originals'."""

from __future__ import annotations

from pathlib import Path

import pytest
from dataset_fixture import textured

from dbtui.cli import main
from engine.dataset import DatasetError, prepare_dataset, prepared_from


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
