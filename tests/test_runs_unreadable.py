"""Run folders, or parts of them, this user may not read (another user's 700 run, a file system's lost+found, a folder
chmod-ed by hand): listings skip them and commands say so, where they crashed as bugs. Root reads through any mode,
so the refusal comes from stand-ins for Path's stat, iterdir and open, as the OS answers an ordinary user."""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

import pytest
from textual.widgets import Static

from dbtui.cli import main
from engine.events import RunFinished, RunStarted
from engine.runs.folder import RunFolder, RunFolderError, RunState, list_runs
from engine.runs.runs_nearby import run_dirs_near
from tests.runs_helpers import run_with_checkpoints, stat_fails_inside


def _refused(path: Path) -> PermissionError:
    return PermissionError(errno.EACCES, "Permission denied", str(path))


def shut(monkeypatch: pytest.MonkeyPatch, folder: Path, *, listed: bool = False) -> None:
    """``folder`` as another user's folder of mode 700: nothing in it can be looked at, nor it be listed. ``listed``:
    mode 711, listed by no one but its files open."""
    stat, iterdir = Path.stat, Path.iterdir

    def inside(path: Path) -> bool:
        return folder in path.absolute().parents

    def guarded_stat(self: Path, *, follow_symlinks: bool = True) -> os.stat_result:
        if inside(self) and not listed:
            raise _refused(self)
        return stat(self, follow_symlinks=follow_symlinks)

    def guarded_iterdir(self: Path):
        if self.absolute() == folder or inside(self) and not listed:
            raise _refused(self)
        return iterdir(self)

    monkeypatch.setattr(Path, "stat", guarded_stat)
    monkeypatch.setattr(Path, "iterdir", guarded_iterdir)


def stopped_run(path: Path) -> RunFolder:
    folder = RunFolder(path).create()
    started = RunStarted(run_dir=str(folder.path), profile={}, hardware={}, versions={}, total_steps=3)
    finished = RunFinished(step=1, outputs={}, seconds=1.0, status="stopped")
    folder.events.write_text(started.to_json() + "\n" + finished.to_json() + "\n", encoding="utf-8")
    folder.write_state(RunState(pid=os.getpid(), status="stopped", step=1, total_steps=3))
    return folder


def test_a_folder_this_user_cannot_enter_is_skipped_by_listings_and_said_where_it_is_named(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Python 3.11's exists() raises for EACCES: `dbtui runs`, `attach` and a run's name crashed with status 3."""
    from dbtui.engine_facade import RealEngine

    mine = stopped_run(tmp_path / "runs" / "mine")
    theirs = stopped_run(tmp_path / "runs" / "theirs")
    (tmp_path / "lost+found").mkdir()
    shut(monkeypatch, theirs.path)
    shut(monkeypatch, tmp_path / "lost+found")
    monkeypatch.setenv("COLUMNS", "300")
    assert [run.path for run in list_runs(tmp_path / "runs")] == [mine.path]
    assert [run.path for run in RealEngine().list_runs(str(tmp_path / "runs"))] == [mine.path]  # the wizard's Attach
    assert run_dirs_near(tmp_path) == [tmp_path / "runs"]
    assert main(["runs", str(tmp_path / "runs")]) == 0
    assert "mine" in capsys.readouterr().out
    for command in (["attach", "--plain"], ["report"], ["stop"], ["resume"]):
        assert main([command[0], str(theirs.path), *command[1:]]) == 2
        err = capsys.readouterr().err
        assert f"cannot read {theirs.path}: Permission denied" in err and "chmod -R a+rX" in err, err
    assert main(["stop", "theirs", "--dir", str(tmp_path / "runs")]) == 2  # by its name
    assert f"cannot read {theirs.path}" in capsys.readouterr().err
    monkeypatch.chdir(tmp_path)
    assert main(["attach", "--plain"]) == 0  # the newest that can be read
    assert "stopped at step 1" in capsys.readouterr().out


async def test_a_folder_of_runs_that_cannot_be_listed_is_said_by_runs_and_the_wizards_attach(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from dbtui.app import make_app
    from dbtui.engine_facade import RealEngine
    from dbtui.screens.attach import AttachScreen
    from dbtui.session import Session
    from wizard_steps import settle

    stopped_run(tmp_path / "runs" / "mine")
    shut(monkeypatch, tmp_path / "runs", listed=True)
    with pytest.raises(RunFolderError, match="cannot read .*runs: Permission denied"):
        list_runs(tmp_path / "runs")
    assert main(["runs", str(tmp_path / "runs")]) == 2
    assert "cannot read" in capsys.readouterr().err
    engine = RealEngine()
    app = make_app(engine, Session.for_demo(), image_renderer="none")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = AttachScreen(engine, str(tmp_path / "runs"))
        app.push_screen(screen)
        await settle(pilot)
        assert "Permission denied" in str(screen.query_one("#attach-note", Static).render())


def test_a_run_whose_events_samples_or_checkpoints_cannot_be_read_is_said_by_report_attach_and_resume(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """report crashed where attach said why; a checkpoints folder that cannot be listed crashed attach after its
    replay, and resume."""
    from engine.runs import launcher

    folder, _ = run_with_checkpoints(tmp_path, [2])
    started = RunStarted(run_dir=str(folder.path), profile={}, hardware={}, versions={}, total_steps=3)
    folder.events.write_text(started.to_json() + "\n" + RunFinished(step=2, outputs={}, seconds=1.0, status="stopped").to_json()
                             + "\n", encoding="utf-8")
    folder.write_state(RunState(pid=os.getpid(), status="stopped", step=2, total_steps=3))
    monkeypatch.setattr(launcher, "worker_command", lambda profile, run_dir, extra: [sys.executable, "-c", "pass"])

    with monkeypatch.context() as patch:
        shut(patch, folder.checkpoints)
        for command, code in ((["attach", "--plain"], 2), (["report"], 2), (["resume", "--detach"], 2)):
            assert main([command[0], str(folder.path), *command[1:]]) == code
            err = capsys.readouterr().err
            assert f"cannot read {folder.checkpoints}: Permission denied" in err, (command, err)
    with monkeypatch.context() as patch:
        shut(patch, folder.samples)
        assert main(["report", str(folder.path)]) == 2
        assert f"cannot read {folder.samples}: Permission denied" in capsys.readouterr().err
    opened = Path.open

    def refused_open(self: Path, *args: object, **kwargs: object):
        if self == folder.events:
            raise _refused(self)
        return opened(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", refused_open)
    for command in (["attach", "--plain"], ["report"]):
        assert main([command[0], str(folder.path), *command[1:]]) == 2
        assert f"cannot read {folder.events}: Permission denied" in capsys.readouterr().err


def gone_stale(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """``folder`` as a stale NFS handle: nothing in it can be looked at."""
    stat_fails_inside(monkeypatch, folder, lambda path: OSError(errno.ESTALE, "Stale file handle", str(path)))


def test_an_error_other_than_a_permission_is_said_as_it_is_and_a_listing_names_the_folder_it_leaves_out(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A name too long, a disk's or an NFS error was said as another user's folder (`chmod -R a+rX`), and a listing
    dropped the run it could not look into without a word."""
    name = "x" * 300
    assert main(["attach", name]) == 2
    err = capsys.readouterr().err
    assert f"cannot read {name}: File name too long" in err and "chmod" not in err and "another user" not in err

    runs = tmp_path / "runs"
    kept, stale = stopped_run(runs / "kept"), stopped_run(runs / "stale")
    gone_stale(monkeypatch, stale.path)
    assert list_runs(runs) == [kept]
    assert f"dbtui: cannot read {stale.path}: Stale file handle; it is left out of the list of runs" in capsys.readouterr().err
    skipped: list[RunFolderError] = []
    assert list_runs(runs, skipped.append) == [kept] and len(skipped) == 1
    monkeypatch.setenv("COLUMNS", "300")  # one table row a line: at 80 the run column folds a long tmp path mid-name
    assert main(["runs", str(runs)]) == 0
    out, err = capsys.readouterr()
    assert "kept" in out and "stale" not in out and f"cannot read {stale.path}: Stale file handle" in err
    assert main(["attach", str(stale.path)]) == 2
    err = capsys.readouterr().err
    assert f"cannot read {stale.path}: Stale file handle" in err and "chmod" not in err
    assert run_dirs_near(tmp_path) == [runs]  # a hint of where runs are passes over what it cannot tell


async def test_the_wizards_attach_list_says_which_run_folder_it_left_out_as_unreadable(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A run folder a disk's or NFS error hid was said on stderr, under the wizard's screen: the Attach list dropped
    it without a word."""
    from dbtui.app import make_app
    from dbtui.engine_facade import RealEngine
    from dbtui.screens.attach import AttachScreen
    from dbtui.session import Session
    from wizard_steps import settle

    runs = tmp_path / "runs"
    stopped_run(runs / "kept")
    stale = stopped_run(runs / "stale")
    gone_stale(monkeypatch, stale.path)
    engine = RealEngine()
    app = make_app(engine, Session.for_demo(), image_renderer="none")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = AttachScreen(engine, str(runs))
        app.push_screen(screen)
        await settle(pilot)
        note = str(screen.query_one("#attach-note", Static).render())
    assert "1 run(s)" in note and f"left out, as unreadable: cannot read {stale.path}: Stale file handle" in note, note
    assert "left out" not in capsys.readouterr().err  # said on the screen, not under it
