"""A run started with a detour in where runs go (`saving.output_dir = "runs/../runs"`): what dbtui prints names the run
without it."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

from engine.runs.folder import run_dir_for
from engine.support.plain_path import plain_path
from tests.runs_helpers import profile_file


def test_a_run_started_under_a_detour_is_named_without_it(tmp_path: Path, monkeypatch, capsys) -> None:
    """`dbtui run P --set 'saving.output_dir="runs/../runs"'` printed `run folder: runs/../runs/r` and `dbtui attach
    runs/../runs/r`, `dbtui stop …` with the detour (and `outputs are in runs/../runs/r/outputs` in the foreground)."""
    from dbtui.cli import main
    from engine.runs import launcher

    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()  # where earlier runs are
    path = profile_file(tmp_path, name="r", saving={"output_dir": "runs/../runs"})
    monkeypatch.setattr(launcher, "worker_command", lambda *_: [sys.executable, "-c", ""])  # no trainer: its words
    assert main(["run", str(path), "--detach"]) == 0
    out = capsys.readouterr().out
    assert "run folder: runs/r\n" in out and "dbtui attach runs/r\n" in out and "dbtui stop runs/r " in out, out
    assert "../" not in out


def test_a_first_run_whose_runs_folder_is_not_made_yet_is_named_without_the_detour(tmp_path: Path, monkeypatch,
                                                                                    capsys) -> None:
    """With no runs/ yet, `saving.output_dir = "runs/../runs/x"` still printed `run folder: runs/../runs/x/r` and
    `dbtui attach runs/../runs/x/r`: a `..` past a missing folder was kept as given."""
    from dbtui.cli import main
    from engine.runs import launcher

    monkeypatch.chdir(tmp_path)
    path = profile_file(tmp_path, name="r", saving={"output_dir": "runs/../runs/x"})
    monkeypatch.setattr(launcher, "worker_command", lambda *_: [sys.executable, "-c", ""])  # no trainer: its words
    assert main(["run", str(path), "--detach"]) == 0
    out = capsys.readouterr().out
    assert "run folder: runs/x/r\n" in out and "dbtui attach runs/x/r\n" in out, out
    assert "../" not in out
    assert (tmp_path / "runs" / "x" / "r").is_dir()


def test_a_folder_not_made_yet_is_plain_where_its_made_part_is(tmp_path: Path, monkeypatch) -> None:
    """A new run's folder is named before it is made. Its missing folders are made as plain folders, so a `..` after one
    undoes it (and the folder before it is not made); past a file nothing can be made, kept as given."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    (tmp_path / "notes.txt").write_text("")
    assert plain_path(Path("runs/../runs/new/sub")) == Path("runs/new/sub")
    assert plain_path(Path(f"{tmp_path}/runs/../runs/new")) == tmp_path / "runs" / "new"
    assert plain_path(Path("runs/typo/../x")) == Path("runs/x")
    assert plain_path(Path("new/a/../../runs/b")) == Path("runs/b")
    assert plain_path(Path("new/../../elsewhere")) == Path("../elsewhere")
    assert plain_path(Path(f"new/../../{tmp_path.name}/runs/z")) == Path("runs/z")  # back where it climbed from
    assert plain_path(Path("notes.txt/../x")) == Path("notes.txt/../x")
    (tmp_path / "runs" / "link").symlink_to(tmp_path / "runs" / "new", target_is_directory=True)  # dangling
    assert plain_path(Path("runs/link/../x")) == Path("runs/link/../x")
    profile = SimpleNamespace(name="r", saving=SimpleNamespace(output_dir="runs/../runs"))
    assert run_dir_for(profile) == Path("runs/r")
