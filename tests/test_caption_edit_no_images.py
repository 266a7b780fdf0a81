"""A bulk caption edit of a folder without images is refused, status 2, as `--auto` is: the folder was mistyped, or
its photos sit in a sub-folder. `--frequency` only reads: it says so and exits 0."""

from __future__ import annotations

from pathlib import Path

import pytest
from dataset_fixture import textured

from dbtui.cli import main


@pytest.mark.parametrize("edit", [["--add-tag", "ohwx"], ["--remove-tag", "dog"], ["--replace", "a", "b"],
                                  ["--dedupe"], ["--trim"]])
def test_an_edit_of_a_folder_without_images_is_refused(tmp_path: Path, edit: list[str], capsys) -> None:
    """It said '0 caption(s) changed' and a hint, status 0, so a script went on as if its tag had been added."""
    textured(0, (32, 32)).save((tmp_path / "DCIM").mkdir() or tmp_path / "DCIM" / "a.png")
    assert main(["dataset", "caption", str(tmp_path), *edit]) == 2
    said = " ".join(capsys.readouterr().err.split())
    assert f"no images in {tmp_path}: nothing to edit" in said and "'DCIM'" in said and "-r" in said, said
    assert not list(tmp_path.rglob("*.txt"))


def test_every_concept_is_refused_before_any_is_edited(tmp_path: Path, capsys) -> None:
    (tmp_path / "empty").mkdir()
    textured(0, (32, 32)).save((tmp_path / "dogs").mkdir() or tmp_path / "dogs" / "a.png")
    profile = tmp_path / "p.toml"
    profile.write_text(f'[model]\npretrained = "builtin:tiny-sd1"\n'
                       f'[[concepts]]\ninstance_dir = "{tmp_path / "dogs"}"\ninstance_prompt = "photo of ohwx dog"\n'
                       f'[[concepts]]\ninstance_dir = "{tmp_path / "empty"}"\ninstance_prompt = "photo of zwx cat"\n')
    assert main(["dataset", "caption", "--profile", str(profile), "--add-tag", "ohwx"]) == 2
    assert f"no images in {tmp_path / 'empty'}: nothing to edit" in " ".join(capsys.readouterr().err.split())
    assert not (tmp_path / "dogs" / "a.txt").exists()


@pytest.mark.parametrize("nothing", ["NOTHING_TO_CAPTION", "NOTHING_TO_EDIT"])
def test_the_refusal_is_one_for_captioning_and_edits(tmp_path: Path, nothing: str) -> None:
    """The edits took their refusal from the auto-captioning module, whose default words were the captioner's: it now
    has a module of its own, which both use, and each names what it does not do."""
    from engine.dataset import CaptionError, CaptionStore, no_images

    words = getattr(no_images, nothing)
    with pytest.raises(CaptionError, match=f"no images in .*: {words}"):
        no_images.refuse_no_images(CaptionStore(tmp_path), words)
    textured(0, (32, 32)).save(tmp_path / "a.png")
    no_images.refuse_no_images(CaptionStore(tmp_path), words)
