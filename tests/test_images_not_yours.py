"""Image files, or an instance folder, the user has no permission to read: validate and run said the pictures were
damaged ("cannot be read as pictures ... move them out, or train from a prepared copy"), or "Permission denied" with
nothing to do. They now say it is a permission, and the chmod that gives it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from tests.as_a_user import dbtui_as_a_user, python_as_a_user

PROFILE = """schema_version = 1
[model]
pretrained = "builtin:tiny-sd1"
[[concepts]]
instance_dir = "photos"
instance_prompt = "photo of zwx disc"
[dataset]
resolution = 64
[training]
max_train_steps = 5
[saving]
output_dir = "runs"
"""


@pytest.fixture
def photos(tmp_path: Path) -> Iterator[Path]:
    """tmp_path/photos with a picture anyone reads and one its owner alone could (mode 000), beside a profile."""
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.new("RGB", (64, 64), (200, 40, 40)).save(folder / "open.png")
    Image.new("RGB", (64, 64), (40, 200, 40)).save(folder / "locked.png")
    (tmp_path / "p.toml").write_text(PROFILE, encoding="utf-8")
    (folder / "locked.png").chmod(0)
    yield folder
    (folder / "locked.png").chmod(0o644)
    folder.chmod(0o755)


@pytest.mark.parametrize("command", ["validate", "run"])
def test_an_image_you_may_not_read_is_said_to_be_a_permission_not_damage(command: str, photos: Path) -> None:
    done = dbtui_as_a_user(command, "p.toml", cwd=photos.parent)
    said = " ".join(done.stderr.split())
    assert done.returncode == 2, said
    assert "1 image file(s) cannot be opened: you have no permission to read them: 'photos/locked.png'" in said
    assert f"Give yourself read access with `chmod u+r {photos / 'locked.png'}`." in said
    assert "cannot be read as pictures" not in said and "open.png" not in said


def test_an_instance_folder_you_may_not_enter_says_the_chmod_that_opens_it(photos: Path) -> None:
    photos.chmod(0o600)
    done = dbtui_as_a_user("validate", "p.toml", cwd=photos.parent)
    said = " ".join(done.stderr.split())
    assert done.returncode == 2, said
    assert f"cannot read folder 'photos': Permission denied; give yourself access with `chmod u+rx {photos}`" in said


@pytest.mark.parametrize("mode", [0o300, 0o100], ids=["write and enter", "enter alone"])
def test_a_folder_you_may_not_list_says_the_chmod_that_opens_it_as_pasted_anywhere(mode: int, photos: Path) -> None:
    """`dataset check` of a folder that cannot be listed said only "check its permissions", where one that cannot be
    entered was told its chmod; and that chmod named the folder as typed, relative to where dbtui ran."""
    spaced = photos.rename(photos.parent / "my photos")
    spaced.chmod(mode)
    try:
        done = dbtui_as_a_user("dataset", "check", "my photos", cwd=photos.parent)
    finally:
        spaced.rename(photos)
    said = " ".join(done.stderr.split())
    assert done.returncode == 2, said
    assert (f"cannot read the folder my photos (Permission denied): give yourself access with `chmod u+rx "
            f"'{spaced}'` (read to list it, execute to open its files)") in said


def test_a_folder_above_that_cannot_be_entered_is_the_one_named(photos: Path) -> None:
    """`chmod u+rx photos` was advised where the folder above it let no one in: that chmod failed too."""
    above = photos.parent / "above"
    above.mkdir()
    photos.rename(above / "photos")
    above.chmod(0o600)
    try:
        done = dbtui_as_a_user("dataset", "check", "above/photos", cwd=photos.parent)
    finally:
        above.chmod(0o755)
        (above / "photos").rename(photos)
    said = " ".join(done.stderr.split())
    assert f"the folder above it, {above}, cannot be entered: give yourself access with `chmod u+rx {above}`" in said


@pytest.mark.parametrize("command", [("dataset", "check", "--profile", "p.toml"),
                                     ("dataset", "caption", "--profile", "p.toml", "--frequency")], ids=["check", "caption"])
def test_a_profiles_instance_folder_behind_a_folder_that_cannot_be_entered_is_refused_not_a_crash(
        command: tuple[str, ...], photos: Path) -> None:
    """The refusal's "where relative paths are read from" asked Python 3.11's exists(), which raised PermissionError:
    "unexpected error … a bug in dbtui" in place of the chmod."""
    above = photos.parent / "above"
    above.mkdir()
    photos.rename(above / "photos")
    profile = photos.parent / "p.toml"
    profile.write_text(PROFILE.replace('"photos"', '"above/photos"'), encoding="utf-8")
    above.chmod(0o600)
    try:
        done = dbtui_as_a_user(*command, cwd=photos.parent)
    finally:
        above.chmod(0o755)
        (above / "photos").rename(photos)
    said = " ".join(done.stderr.split())
    assert done.returncode == 2, said
    assert ("concepts.0.instance_dir: cannot read the folder above/photos (Permission denied): the folder above it, "
            f"{above}, cannot be entered: give yourself access with `chmod u+rx {above}`") in said, said


def test_dataset_check_gives_the_chmod_for_an_image_you_may_not_read(photos: Path) -> None:
    """It said "check the file's permissions or copy it again": the copy fails as the read does."""
    done = dbtui_as_a_user("dataset", "check", "photos", cwd=photos.parent)
    table = "".join(done.stdout.replace("│", " ").split())  # the column may wrap anywhere in the long path
    assert done.returncode == 1, done.stderr
    assert f"giveyourselfreadaccesswith`chmodu+r{photos / 'locked.png'}`" in table, done.stdout


def test_a_caption_file_you_may_not_read_is_given_the_chmod_not_a_copy(photos: Path) -> None:
    """validate and dataset check said "check its permissions or copy it again" of a caption `chmod 000`, where
    cc039a1d gave its image the chmod: the copy fails as the read does."""
    caption = photos / "open.txt"
    caption.write_text("photo of zwx disc", encoding="utf-8")
    caption.chmod(0)
    said = python_as_a_user("from engine.data.caption_text import CaptionFileError, read_caption_file\n"
                            "try:\n    read_caption_file('photos/open.txt')\nexcept CaptionFileError as error:\n"
                            "    print(error)", cwd=photos.parent)
    assert said.strip() == ("caption file 'photos/open.txt' cannot be read (Permission denied); give yourself read "
                            f"access with `chmod u+r {caption}`"), said


def test_the_wizards_prepare_gives_the_chmod_for_an_original_it_could_not_read(photos: Path) -> None:
    """The wizard's Dataset step, after Prepare, said "check the file's permissions or copy it again, then Prepare
    again" of an original `chmod 000` (cc039a1d mended only dataset check and validate)."""
    said = python_as_a_user("from engine.dataset import prepare_dataset\n"
                            "from engine.dataset.prepare_findings import left_out_findings\n"
                            "result = prepare_dataset('photos', 'out', resolution=64, workers=1)\n"
                            "print(*(f'{finding.path}: {finding.fix}' for finding in left_out_findings(result)))",
                            cwd=photos.parent)
    assert said.strip() == f"photos/locked.png: give yourself read access with `chmod u+r {photos / 'locked.png'}`, then Prepare again"
