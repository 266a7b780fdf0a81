"""A class folder the user cannot read (no read or no execute permission): validate called the profile valid and the
run stopped after its model had loaded, on "permission denied on 'cls/a.png'" with advice to make the run folder
writable; `dataset check --profile` stopped, blaming concepts.0.instance_dir. Both now name the class folder."""

from __future__ import annotations

import os
import pwd
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from tests.as_a_user import dbtui_commands_as_a_user

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


def _make(folder: Path, profile: str = PROFILE) -> Path:
    """``folder``/cls, holding one class image, beside an instance folder and a profile training both."""
    for name in ("photos", "cls"):
        (folder / name).mkdir(parents=True)
        Image.new("RGB", (64, 64), (200, 40, 40)).save(folder / name / "a.png")
    (folder / "p.toml").write_text(profile, encoding="utf-8")
    return folder / "cls"


@pytest.fixture
def cls(tmp_path: Path) -> Path:
    return _make(tmp_path)


CHECK = ("dataset", "check", "--profile", "p.toml")
VALIDATE = ("validate", "p.toml")
RUN = ("run", "p.toml")
AS_ROOT = os.geteuid() == 0  # only root can give a folder or a file to another user


@dataclass(frozen=True)
class Cases:
    base: Path
    said: dict[tuple[str, str], subprocess.CompletedProcess[str]]  # by case, then command

    def cls(self, case: str) -> Path:
        return self.base / case / "cls"


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cases]:
    """What dbtui said of each case's folder, made unreadable as its test describes. One child runs every command as a
    user: each `dataset check --profile` loads its tokenizers, and a child of its own paid ~6 s of CPU importing torch
    for them. No test changes a folder; the permissions are given back at the end."""
    base = tmp_path_factory.mktemp("classes")
    locked: list[Path] = []
    commands: dict[tuple[str, str], tuple[tuple[str, ...], Path]] = {}

    def lock(case: str, path: Path, mode: int, *runs: tuple[str, ...]) -> None:
        path.chmod(mode)
        locked.append(path)
        commands.update({(case, run[0]): (run, base / case) for run in runs})

    for case, mode in (("not-entered", 0o600), ("not-listed", 0o300)):
        lock(case, _make(base / case), mode, VALIDATE, CHECK)
    above = base / "behind" / "above"
    above.mkdir(parents=True)
    _make(base / "behind", PROFILE.replace('"cls"', '"above/cls"')).rename(above / "cls")
    lock("behind", above, 0o600, CHECK)
    lock("unused", _make(base / "unused", PROFILE.replace("enabled = true", "enabled = false")), 0o600, CHECK)
    lock("unreadable", _make(base / "unreadable") / "a.png", 0o000, CHECK, VALIDATE, RUN)  # `run` last: it may write
    if AS_ROOT:
        os.chown(_make(base / "theirs"), 65534, 65534)
        lock("theirs", base / "theirs" / "cls", 0o700, VALIDATE)
        os.chown(_make(base / "their-image") / "a.png", 65534, 65534)
        lock("their-image", base / "their-image" / "cls" / "a.png", 0o000, CHECK, VALIDATE)
    try:
        yield Cases(base, dict(zip(commands, dbtui_commands_as_a_user(list(commands.values())), strict=True)))
    finally:
        for path in locked:
            path.chmod(0o755)


@pytest.mark.parametrize("case", ["not-entered", "not-listed"], ids=["not entered", "not listed"])
def test_validate_names_a_class_folder_you_cannot_read(case: str, cases: Cases) -> None:
    done = cases.said[case, "validate"]
    said = " ".join(done.stderr.split())
    assert done.returncode == 2, said
    assert (f"concepts.0.class_dir: cannot read folder 'cls': Permission denied; give yourself access with `chmod u+rx "
            f"{cases.cls(case)}`") in said


@pytest.mark.parametrize(("case", "what"), [("not-entered", "can be listed but not entered (no execute permission)"),
                                            ("not-listed", "cannot be read (Permission denied)")], ids=["not entered", "not listed"])
def test_the_profiles_check_reports_a_class_folder_it_cannot_read_as_one_finding(case: str, what: str, cases: Cases) -> None:
    """The finding named the folder three times ("cls │ the class folder: cannot open the files in the folder cls … `chmod
    u+rx cls`") and said what to do twice (the chmod, then "make it readable by you"); a folder that could not be listed
    was told only "check its permissions". The folder is its row's file; the problem, then the chmod, once each."""
    done = cases.said[case, "dataset"]
    said = " ".join(done.stdout.replace("│", " ").split())
    assert done.returncode == 1, done.stderr
    assert "instance_dir" not in done.stderr and "unexpected error" not in done.stderr
    assert (f"cls error the class folder {what} give yourself access with `chmod u+rx {cases.cls(case)}` (read to list it, "
            "execute to open its files), or give another class folder (dbtui generates the class images there)") in said, said
    assert said.count("cls") == 2  # its row's file, and the chmod
    assert "1 images, 1 usable" in said  # the instance folder is still checked


def test_a_class_folder_behind_a_folder_that_cannot_be_entered_is_a_finding_not_a_crash(cases: Cases) -> None:
    """Python 3.11's stat of the class folder raised PermissionError, and the check stopped as "a bug in dbtui"."""
    done = cases.said["behind", "dataset"]
    above = cases.base / "behind" / "above"
    said = " ".join(done.stdout.replace("│", " ").split())
    assert done.returncode == 1, done.stderr
    assert f"the folder above it, {above}, cannot be entered: give yourself access with `chmod u+rx {above}`" in said


def test_the_check_leaves_a_class_folder_prior_preservation_does_not_read(cases: Cases) -> None:
    # validate calls it unused; an error in the check made `dataset check --profile` exit 1 over it.
    done = cases.said["unused", "dataset"]
    assert done.returncode == 0, done.stdout + done.stderr
    assert "the class folder" not in done.stdout and "1 images, 1 usable — 0 error(s)" in " ".join(done.stdout.split())


def test_class_images_you_cannot_read_are_not_counted_as_usable_in_the_summary(cases: Cases) -> None:
    """With every class image `chmod 000` the check listed an error for each, then summed up "1 present, 0 to generate"
    as if the run would train on them; the run refuses to start on them. The summary now says so."""
    done = cases.said["unreadable", "dataset"]
    said = " ".join(done.stdout.replace("│", " ").split())
    assert done.returncode == 1, done.stderr
    assert "cls/a.png error cannot be read: Permission denied" in said, said
    assert ("Class images for prior preservation: 1 wanted, 1 present (1 of them unusable: a run refuses to start until "
            "each is fixed, or moved out for dbtui to generate one in its place; see their errors), 0 to generate") in said
    refused = cases.said["unreadable", "run"]  # what the summary says the run does
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


@pytest.mark.skipif(not AS_ROOT, reason="only root can give a folder to another user")
def test_validate_says_whose_a_class_folder_is_that_the_user_cannot_chmod(cases: Cases) -> None:
    done = cases.said["theirs", "validate"]
    said = " ".join(done.stderr.split())
    assert done.returncode == 2, said
    owner = pwd.getpwuid(65534).pw_name
    assert (f"concepts.0.class_dir: cannot read folder 'cls': Permission denied; it belongs to {owner}, so only they can "
            f"change that: ask them to let you in, or use `sudo chmod o+rx {cases.cls('theirs')}`") in said
    assert "chmod u+rx" not in said


@pytest.mark.parametrize(("case", "owner"), [("unreadable", None), ("their-image", 65534)], ids=["yours", "another user's"])
def test_a_class_image_you_cannot_read_is_given_the_chmod_not_a_copy(case: str, owner: int | None, cases: Cases) -> None:
    """`dataset check` said "move it out of the class folder …, or copy it again" of a class image `chmod 000`, where
    validate said `chmod u+r`: copying a file you cannot read fails. Both now give the chmod, or the owner to ask."""
    if owner is not None and not AS_ROOT:
        pytest.skip("only root can give a file to another user")
    image = cases.cls(case) / "a.png"
    fix = (f"give yourself read access with `chmod u+r {image}`" if owner is None else
           f"it belongs to {pwd.getpwuid(owner).pw_name}, so only they can change that: ask them to let you read it, or "
           f"use `sudo chmod o+r {image}`")
    checked = cases.said[case, "dataset"]
    table = "".join(checked.stdout.replace("│", " ").split())  # the column may wrap anywhere in the long path
    assert checked.returncode == 1, checked.stderr
    assert "".join(fix.split()) in table and "copyitagain" not in table, checked.stdout
    validated = cases.said[case, "validate"]
    said = " ".join(validated.stderr.split())
    assert validated.returncode == 2, said
    assert f"you have no permission to read them: 'cls/a.png'. {fix[:1].upper()}{fix[1:]}." in said, said
