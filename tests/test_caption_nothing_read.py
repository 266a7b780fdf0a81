"""A caption command that finds nothing to read says why, where it is the folder or the extension given."""

from __future__ import annotations

from pathlib import Path

import pytest
from dataset_fixture import textured

from dbtui.cli import main


def test_frequency_says_the_images_captions_have_another_extension(tmp_path: Path, capsys) -> None:
    """`caption --frequency --extension .caption` of images captioned in .txt printed nothing and exited 0, as if no
    caption had a tag. It only reads: it says so and exits 0, where an edit is refused (below)."""
    for name in ("a", "b"):
        textured(0, (32, 32)).save(tmp_path / f"{name}.png")
        (tmp_path / f"{name}.txt").write_text("zwx, dog\n", encoding="utf-8")
    said = "no .caption captions: 2 of the 2 images have .txt captions instead; give --extension .txt to read those"
    assert main(["dataset", "caption", str(tmp_path), "--frequency", "--extension", ".caption"]) == 0
    assert said in " ".join(capsys.readouterr().out.split())
    assert main(["dataset", "caption", str(tmp_path), "--frequency"]) == 0
    assert capsys.readouterr().out.split() == ["2", "dog", "2", "zwx"]


def test_frequency_of_a_folder_without_images_says_so_and_where_they_are(tmp_path: Path, capsys) -> None:
    textured(0, (32, 32)).save((tmp_path / "sub").mkdir() or tmp_path / "sub" / "a.png")
    assert main(["dataset", "caption", str(tmp_path), "--frequency"]) == 0
    assert (f"no images in {tmp_path}: captions are read beside their images; its sub-folders hold some: give -r to "
            "read those") in " ".join(capsys.readouterr().out.split())


def test_add_tag_under_an_extension_no_caption_has_is_refused_unless_new_captions_are_asked(tmp_path: Path,
                                                                                               capsys) -> None:
    """`--add-tag x --extension caption` of images captioned in .txt created a .caption holding just "x" beside each,
    '0 caption(s) changed, 2 created', and never named the .txt captions a mistyped extension meant."""
    for name in ("a", "b"):
        textured(0, (32, 32)).save(tmp_path / f"{name}.png")
        (tmp_path / f"{name}.txt").write_text("zwx, dog\n", encoding="utf-8")
    assert main(["dataset", "caption", str(tmp_path), "--add-tag", "x", "--extension", "caption"]) == 2  # a user error
    said = " ".join(capsys.readouterr().err.split())
    assert "2 of the 2 have .txt captions" in said and "give --extension .txt" in said and "--new-captions" in said
    assert not list(tmp_path.glob("*.caption"))
    assert main(["dataset", "caption", str(tmp_path), "--add-tag", "x", "--extension", "caption", "--new-captions"]) == 0
    assert (tmp_path / "a.caption").read_text(encoding="utf-8").strip() == "x"
    assert main(["dataset", "caption", str(tmp_path), "--undo", "--extension", "caption"]) == 0
    assert not list(tmp_path.glob("*.caption"))  # the new captions' undo removes them
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "zwx, dog\n"


def test_a_folder_holding_only_prepared_copies_is_not_told_to_give_r(tmp_path: Path, capsys) -> None:
    """`caption proj --frequency` of a folder whose only sub-folder holds dbtui's prepared copies said 'give -r to read
    those', and with -r, which passes over prepared copies, it read none either."""
    (tmp_path / "raw").mkdir()
    textured(0, (32, 32)).save(tmp_path / "raw" / "a.png")
    assert main(["dataset", "prepare", str(tmp_path / "raw"), str(tmp_path / "proj" / "prepared"), "--resolution", "32"]) == 0
    capsys.readouterr()
    assert main(["dataset", "caption", str(tmp_path / "proj"), "--frequency"]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert f"no images in {tmp_path / 'proj'}" in said and "give -r" not in said


@pytest.mark.parametrize("edit", [["--remove-tag", "dog"], ["--replace", "dog", "cat"], ["--dedupe"], ["--trim"]])
@pytest.mark.parametrize("extension", [".txtt", "caption"])
def test_an_edit_under_an_extension_no_caption_has_is_refused(tmp_path: Path, capsys, edit: list[str],
                                                              extension: str) -> None:
    """`--trim --extension .txtt` (or `--remove-tag dog --extension caption`) of images captioned in .txt changed
    nothing and exited 0 with a hint, so a script went on as if its captions had been edited: what was asked cannot
    be done (status 2, as for a folder without images), and the extensions there are named."""
    for name in ("a", "b"):
        textured(0, (32, 32)).save(tmp_path / f"{name}.png")
        (tmp_path / f"{name}.txt").write_text("zwx,  dog, dog\n", encoding="utf-8")
    (tmp_path / "a.caption").write_text("zwx, dog\n", encoding="utf-8")
    if extension == "caption":  # one of .caption is a caption of the extension: the others are the user's to make
        (tmp_path / "a.caption").unlink()
    assert main(["dataset", "caption", str(tmp_path), *edit, "--extension", extension]) == 2
    said = " ".join(capsys.readouterr().err.split())
    ext = ".txtt" if extension == ".txtt" else ".caption"
    have = "2 of the 2 have .txt captions" + (" and 1 of the 2 has .caption captions" if ext == ".txtt" else "")
    assert f"no image has a {ext} caption, but {have}: {edit[0]} would change none; give --extension .txt" in said, said
    assert [(tmp_path / f"{name}.txt").read_text(encoding="utf-8") for name in "ab"] == ["zwx,  dog, dog\n"] * 2
    assert not (tmp_path / ".dbtui-captions-history").exists()


@pytest.mark.parametrize("edit", [["--remove-tag", "dog"], ["--trim"], ["--frequency"]])
def test_an_extension_differing_only_in_letter_case_is_named(tmp_path: Path, capsys, edit: list[str]) -> None:
    """`--trim --extension .TXT` of images captioned in .txt said '0 caption(s) changed' and exited 0, and
    `--frequency` printed nothing: .txt was not counted as another extension than .TXT, though on a disk whose names
    are case-sensitive it is another file, which training with .TXT does not read."""
    for name in ("a", "b"):
        textured(0, (32, 32)).save(tmp_path / f"{name}.png")
        (tmp_path / f"{name}.txt").write_text("zwx,  dog\n", encoding="utf-8")
    if (tmp_path / "a.TXT").exists():
        pytest.fail("this test needs a disk whose names are case-sensitive")
    code = main(["dataset", "caption", str(tmp_path), *edit, "--extension", ".TXT"])
    out, err = (" ".join(text.split()) for text in capsys.readouterr())
    if edit == ["--frequency"]:  # it only reads: said, status 0
        assert code == 0 and "no .TXT captions: 2 of the 2 images have .txt captions instead; give --extension .txt" \
            in out, out
    else:
        assert code == 2 and f"no image has a .TXT caption, but 2 of the 2 have .txt captions: {edit[0]} would change " \
            "none; give --extension .txt to edit those" in err, err
    assert [(tmp_path / f"{name}.txt").read_text(encoding="utf-8") for name in "ab"] == ["zwx,  dog\n"] * 2
