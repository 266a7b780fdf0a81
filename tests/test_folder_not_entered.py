"""A dataset folder that can be listed but not entered (read permission without execute, e.g. chmod 600): its file
names are seen, yet every file in it fails to open or stat. The dataset commands said so with a traceback."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from tests.as_a_user import dbtui_as_a_user


@pytest.fixture
def shut(tmp_path: Path) -> Iterator[Path]:
    """tmp_path/shut holding a picture and its caption, listable but not enterable while the test runs."""
    folder = tmp_path / "shut"
    folder.mkdir()
    Image.new("RGB", (64, 64), (200, 40, 40)).save(folder / "a.png")
    (folder / "a.txt").write_text("photo of ohwx dog", encoding="utf-8")
    folder.chmod(0o600)
    yield folder
    folder.chmod(0o755)


@pytest.mark.parametrize("command", [["check"], ["caption", "--add-tag", "x"], ["prepare", "--resolution", "64"]])
def test_a_folder_that_cannot_be_entered_is_a_message_with_exit_2(command: list[str], shut: Path) -> None:
    out = [str(shut.parent / "out")] if command[0] == "prepare" else []
    done = dbtui_as_a_user("dataset", command[0], "shut", *out, *command[1:], cwd=shut.parent)
    assert done.returncode == 2, done.stderr
    said = " ".join(done.stderr.split())  # the caption command names the folder by its whole path
    assert "shut: it can be listed but not entered (no execute permission)" in said
    assert re.search(r"chmod u\+rx (\S*/)?shut`", said), said
    assert "Traceback" not in done.stderr and "unexpected error" not in done.stderr


@pytest.mark.parametrize(("mode", "what"), [(0o600, "this sub-folder can be listed but not entered (no execute permission)"),
                                            (0o300, "this sub-folder cannot be read (Permission denied)")],
                         ids=["not entered", "not listed"])
def test_a_sub_folder_that_cannot_be_entered_is_a_finding_of_a_recursive_check(mode: int, what: str, shut: Path) -> None:
    """Its row said "cannot be read: this sub-folder can be listed but not entered …: `chmod u+rx` it", then "check the
    sub-folder's permissions" as what to do; one that could not be listed got no chmod at all. The problem once, its
    chmod as what to do (as the folder checked itself is told: a5927c7d)."""
    Image.new("RGB", (64, 64), (40, 200, 40)).save(shut.parent / "b.png")
    shut.chmod(mode)
    done = dbtui_as_a_user("dataset", "check", ".", "-r", "--resolution", "64", cwd=shut.parent)
    assert done.returncode == 1, done.stderr
    assert "unexpected error" not in done.stderr
    said = " ".join(done.stdout.replace("│", " ").split())
    assert (f"shut error {what} give yourself access with `chmod u+rx {shut}` (read to list it, execute to open its "
            "files)") in said, said


@pytest.mark.parametrize("mode", [0o600, 0o300], ids=["not entered", "not listed"])
def test_a_recursive_caption_edit_names_the_sub_folder_it_left_alone(mode: int, shut: Path) -> None:
    # It edited the rest and said "1 caption(s) changed" with exit 0: the sub-folder's captions went untagged unsaid.
    Image.new("RGB", (64, 64), (40, 200, 40)).save(shut.parent / "b.png")
    shut.chmod(mode)
    done = dbtui_as_a_user("dataset", "caption", ".", "-r", "--add-tag", "x", cwd=shut.parent)
    assert done.returncode == 1, done.stdout + done.stderr
    said = " ".join(done.stdout.split())
    assert "1 created" in said and re.search(r"skipped \S*/shut: this sub-folder (can be listed|cannot be read)", said)
    assert f"; give yourself access with `chmod u+rx {shut}`" in said, said


@pytest.mark.parametrize(("mode", "what"), [(0o600, "this sub-folder can be listed but not entered (no execute permission)"),
                                            (0o300, "this sub-folder cannot be read (Permission denied)")],
                         ids=["not entered", "not listed"])
def test_a_recursive_prepare_names_the_sub_folder_it_left_out_with_its_chmod(mode: int, what: str, shut: Path) -> None:
    """Once the sub-folder's chmod was carried apart from its reason (4319e285), `prepare -r` said "skipped shut: cannot
    be read: this sub-folder cannot be read …" with no chmod, and the wizard's finding "check the sub-folder's
    permissions"; they now say it as the check does."""
    Image.new("RGB", (64, 64), (40, 200, 40)).save(shut.parent / "b.png")
    shut.chmod(mode)
    done = dbtui_as_a_user("dataset", "prepare", ".", str(shut.parent / "out"), "-r", "--resolution", "64",
                           cwd=shut.parent)
    assert done.returncode == 1, done.stdout + done.stderr
    said = " ".join(done.stdout.split())
    assert (f"skipped shut: {what}; give yourself access with `chmod u+rx {shut}` (read to list it, execute to open "
            "its files)") in said, said
    assert "cannot be read: this sub-folder" not in said
