"""A class folder the user cannot read (no read or no execute permission): validate called the profile valid and the
run stopped after its model had loaded, on "permission denied on 'cls/a.png'" with advice to make the run folder
writable; `dataset check --profile` stopped, blaming concepts.0.instance_dir. Both now name the class folder."""

from __future__ import annotations

import os
import pwd
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from tests.as_a_user import dbtui_as_a_user

PROFILE = """schema_version = 1
[model]
pretrained = "builtin:tiny-sd1"
[[concepts]]
instance_dir = "photos"
instance_prompt = "photo of zwx disc"
class_dir = "cls"
class_prompt = "photo of a disc"
num_class_images = 1
[prior]
enabled = true
[dataset]
resolution = 64
[training]
max_train_steps = 5
[saving]
output_dir = "runs"
"""


@pytest.fixture
def cls(tmp_path: Path) -> Iterator[Path]:
    """tmp_path/cls, holding one class image, beside an instance folder and a profile training both."""
    for name in ("photos", "cls"):
        (tmp_path / name).mkdir()
        Image.new("RGB", (64, 64), (200, 40, 40)).save(tmp_path / name / "a.png")
    (tmp_path / "p.toml").write_text(PROFILE, encoding="utf-8")
    yield tmp_path / "cls"
    (tmp_path / "cls").chmod(0o755)


@pytest.mark.parametrize("mode", [0o600, 0o300], ids=["not entered", "not listed"])
def test_validate_names_a_class_folder_you_cannot_read(mode: int, cls: Path) -> None:
    cls.chmod(mode)
    done = dbtui_as_a_user("validate", "p.toml", cwd=cls.parent)
    said = " ".join(done.stderr.split())
    assert done.returncode == 2, said
    assert f"concepts.0.class_dir: cannot read folder 'cls': Permission denied; give yourself access with `chmod u+rx {cls}`" in said


@pytest.mark.parametrize(("mode", "what"), [(0o600, "can be listed but not entered (no execute permission)"),
                                            (0o300, "cannot be read (Permission denied)")], ids=["not entered", "not listed"])
def test_the_profiles_check_reports_a_class_folder_it_cannot_read_as_one_finding(mode: int, what: str, cls: Path) -> None:
    """The finding named the folder three times ("cls │ the class folder: cannot open the files in the folder cls … `chmod
    u+rx cls`") and said what to do twice (the chmod, then "make it readable by you"); a folder that could not be listed
    was told only "check its permissions". The folder is its row's file; the problem, then the chmod, once each."""
    cls.chmod(mode)
    done = dbtui_as_a_user("dataset", "check", "--profile", "p.toml", cwd=cls.parent)
    said = " ".join(done.stdout.replace("│", " ").split())
    assert done.returncode == 1, done.stderr
    assert "instance_dir" not in done.stderr and "unexpected error" not in done.stderr
    assert (f"cls error the class folder {what} give yourself access with `chmod u+rx {cls}` (read to list it, execute "
            "to open its files), or give another class folder (dbtui generates the class images there)") in said, said
    assert said.count("cls") == 2  # its row's file, and the chmod
    assert "1 images, 1 usable" in said  # the instance folder is still checked


def test_a_class_folder_behind_a_folder_that_cannot_be_entered_is_a_finding_not_a_crash(cls: Path) -> None:
    """Python 3.11's stat of the class folder raised PermissionError, and the check stopped as "a bug in dbtui"."""
    above = cls.parent / "above"
    above.mkdir()
    cls.rename(above / "cls")
    profile = cls.parent / "p.toml"
    profile.write_text(profile.read_text(encoding="utf-8").replace('"cls"', '"above/cls"'), encoding="utf-8")
    above.chmod(0o600)
    try:
        done = dbtui_as_a_user("dataset", "check", "--profile", "p.toml", cwd=cls.parent)
    finally:
        above.chmod(0o755)
        (above / "cls").rename(cls)
    said = " ".join(done.stdout.replace("│", " ").split())
    assert done.returncode == 1, done.stderr
    assert f"the folder above it, {above}, cannot be entered: give yourself access with `chmod u+rx {above}`" in said


def test_the_check_leaves_a_class_folder_prior_preservation_does_not_read(cls: Path) -> None:
    # validate calls it unused; an error in the check made `dataset check --profile` exit 1 over it.
    profile = cls.parent / "p.toml"
    profile.write_text(profile.read_text(encoding="utf-8").replace("enabled = true", "enabled = false"), encoding="utf-8")
    cls.chmod(0o600)
    done = dbtui_as_a_user("dataset", "check", "--profile", "p.toml", cwd=cls.parent)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "the class folder" not in done.stdout and "1 images, 1 usable — 0 error(s)" in " ".join(done.stdout.split())


def test_class_images_you_cannot_read_are_not_counted_as_usable_in_the_summary(cls: Path) -> None:
    """With every class image `chmod 000` the check listed an error for each, then summed up "1 present, 0 to generate"
    as if the run would train on them; the run refuses to start on them. The summary now says so."""
    (cls / "a.png").chmod(0o000)
    done = dbtui_as_a_user("dataset", "check", "--profile", "p.toml", cwd=cls.parent)
    said = " ".join(done.stdout.replace("│", " ").split())
    assert done.returncode == 1, done.stderr
    assert "cls/a.png error cannot be read: Permission denied" in said, said
    assert ("Class images for prior preservation: 1 wanted, 1 present (1 of them unusable: a run refuses to start until "
            "each is fixed, or moved out for dbtui to generate one in its place; see their errors), 0 to generate") in said
    refused = dbtui_as_a_user("run", "p.toml", cwd=cls.parent)  # what the summary says the run does
    assert refused.returncode != 0 and "cannot start the run" in refused.stderr and "cls/a.png" in refused.stderr


def test_a_folder_of_another_user_is_said_to_be_theirs_not_given_a_chmod_that_fails(cls: Path, monkeypatch) -> None:
    """The advice was `chmod u+rx FOLDER` for any folder; pasted for another user's, it failed with "Operation not
    permitted". Such a folder is now said to be its owner's, for them or sudo to open."""
    from engine.support.folder_access import access_fix

    mine = f"give yourself access with `chmod u+rx {cls}` (read to list it, execute to open its files)"
    assert access_fix(cls) == mine
    monkeypatch.setattr("os.geteuid", lambda: cls.stat().st_uid + 1)  # someone else asking about this folder
    owner = pwd.getpwuid(cls.stat().st_uid).pw_name
    assert access_fix(cls) == (f"it belongs to {owner}, so only they can change that: ask them to let you in, or use "
                               f"`sudo chmod o+rx {cls}` (read to list it, execute to open its files)")


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a folder to another user")
def test_validate_says_whose_a_class_folder_is_that_the_user_cannot_chmod(cls: Path) -> None:
    os.chown(cls, 65534, 65534)
    cls.chmod(0o700)
    done = dbtui_as_a_user("validate", "p.toml", cwd=cls.parent)
    said = " ".join(done.stderr.split())
    assert done.returncode == 2, said
    owner = pwd.getpwuid(65534).pw_name
    assert (f"concepts.0.class_dir: cannot read folder 'cls': Permission denied; it belongs to {owner}, so only they can "
            f"change that: ask them to let you in, or use `sudo chmod o+rx {cls}`") in said
    assert "chmod u+rx" not in said


@pytest.mark.parametrize("owner", [None, 65534], ids=["yours", "another user's"])
def test_a_class_image_you_cannot_read_is_given_the_chmod_not_a_copy(owner: int | None, cls: Path) -> None:
    """`dataset check` said "move it out of the class folder …, or copy it again" of a class image `chmod 000`, where
    validate said `chmod u+r`: copying a file you cannot read fails. Both now give the chmod, or the owner to ask."""
    if owner is not None and os.geteuid() != 0:
        pytest.skip("only root can give a file to another user")
    image = cls / "a.png"
    if owner is not None:
        os.chown(image, owner, owner)
    image.chmod(0o000)
    fix = (f"give yourself read access with `chmod u+r {image}`" if owner is None else
           f"it belongs to {pwd.getpwuid(owner).pw_name}, so only they can change that: ask them to let you read it, or "
           f"use `sudo chmod o+r {image}`")
    checked = dbtui_as_a_user("dataset", "check", "--profile", "p.toml", cwd=cls.parent)
    table = "".join(checked.stdout.replace("│", " ").split())  # the column may wrap anywhere in the long path
    assert checked.returncode == 1, checked.stderr
    assert "".join(fix.split()) in table and "copyitagain" not in table, checked.stdout
    validated = dbtui_as_a_user("validate", "p.toml", cwd=cls.parent)
    said = " ".join(validated.stderr.split())
    assert validated.returncode == 2, said
    assert f"you have no permission to read them: 'cls/a.png'. {fix[:1].upper()}{fix[1:]}." in said, said
