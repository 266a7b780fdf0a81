"""`dataset caption --frequency` of a folder with a caption of 10,000 words and no commas (a pasted text, a tagger
gone wrong) printed that one "tag" whole: 40 KB that filled the terminal and buried the counts."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from dbtui.cli import main


def test_a_tag_too_long_to_be_one_is_listed_by_its_start_and_length(tmp_path: Path, capsys) -> None:
    for name in ("a", "b"):
        Image.new("RGB", (64, 64), (200, 40, 40)).save(tmp_path / f"{name}.png")
    (tmp_path / "a.txt").write_text("zwx, red disc", encoding="utf-8")
    (tmp_path / "b.txt").write_text(" ".join(["zwx"] * 10_000), encoding="utf-8")
    assert main(["dataset", "caption", str(tmp_path), "--frequency"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "1 red disc" in out and "1 zwx 1" in out  # the short tags, listed as they were
    assert f"1 {' '.join(['zwx'] * 25)}… (39,999 characters)" in out
    assert len(out) < 400
