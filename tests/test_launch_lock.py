"""The launch lock (RUN/.launching) where its file cannot be made, and a run folder made again while a launch waits."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.runs import launch_lock
from engine.runs.folder import RunFolder


def test_a_lock_file_that_cannot_be_made_is_no_other_launchs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """RUN/.launching a dangling link: its ENOENT was tried again for a minute, then blamed on "another launch"."""
    monkeypatch.setattr(launch_lock, "LAUNCH_WAIT_S", 0.3)
    folder = RunFolder(tmp_path / "runs" / "r").create()
    folder.launching.symlink_to(tmp_path / "gone" / "lock")
    with launch_lock.launching(folder):
        pass  # unlocked, as where the lock cannot be had; the launcher's own checks say what is wrong
    assert folder.launching.is_symlink()


def _first_open_meets(monkeypatch: pytest.MonkeyPatch, happening) -> list:
    """os.open calls, the first of them preceded by ``happening()`` (another launch's doing, or an error it raises)."""
    real_open = os.open
    calls: list = []

    def open_after(path, flags, mode=0o777):
        calls.append(path)
        if len(calls) == 1:
            happening()
        return real_open(path, flags, mode)

    monkeypatch.setattr(os, "open", open_after)
    return calls


def test_a_folder_a_launch_made_again_goes_when_it_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whether the launch made the folder was read once, before its tries: one a failed launch removed while this one
    waited, and this one made again, was left behind empty when this one failed too."""
    folder = RunFolder(tmp_path / "runs" / "r")
    folder.path.mkdir(parents=True)
    # The launch that made it fails, and removes it, between this one's mkdir and open.
    calls = _first_open_meets(monkeypatch, folder.path.rmdir)
    with pytest.raises(RuntimeError), launch_lock.launching(folder):
        monkeypatch.undo()
        raise RuntimeError("refused")
    assert len(calls) == 2 and not folder.path.exists()


def test_a_folder_made_again_by_a_third_launch_is_waited_for_not_launched_unlocked(tmp_path: Path,
                                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A launch's ENOENT, the folder made again meanwhile by a third launch: it went on unlocked beside that one."""
    monkeypatch.setattr(launch_lock, "LAUNCH_WAIT_S", 5)
    folder = RunFolder(tmp_path / "runs" / "r")
    folder.path.mkdir(parents=True)

    def gone_and_made_again() -> None:  # by a failed launch, then a third: still a folder when ENOENT is seen
        raise FileNotFoundError(2, "No such file or directory", str(folder.launching))

    calls = _first_open_meets(monkeypatch, gone_and_made_again)
    taken = []
    real_take = launch_lock._take_launch_lock
    monkeypatch.setattr(launch_lock, "_take_launch_lock",
                        lambda f, waiting: taken.append(real_take(f, waiting)) or taken[-1])
    with launch_lock.launching(folder):
        pass
    assert len(calls) == 2 and taken[0][0] is not None  # tried again, and locked


def test_a_launch_is_waited_for_as_long_as_its_checks_may_take_and_the_message_says_what_it_does(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The lock's limit and message said a launch "takes a second or two", since its input checks (every training image
    read, thousands decoded on a slow disk) run under the lock: a second launch gave up on a first that was only slow."""
    import fcntl

    from engine.runs.folder import RunFolderError

    assert launch_lock.LAUNCH_WAIT_S >= 2000 * 0.1  # 2000 photos decoded at about 0.1 s each, on one core
    monkeypatch.setattr(launch_lock, "LAUNCH_WAIT_S", 0.3)
    folder = RunFolder(tmp_path / "runs" / "r").create()
    with open(folder.launching, "w") as other:
        fcntl.flock(other, fcntl.LOCK_EX)  # another launch, inside its checks
        with pytest.raises(RunFolderError) as refused, launch_lock.launching(folder):
            pass
    said = str(refused.value)
    assert "second or two" not in said and "checking its images and starting its trainer" in said


def test_a_launch_that_waits_for_another_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """A second `dbtui run` into a folder another launch holds printed nothing but its "running:" line for as long as
    it waited (up to LAUNCH_WAIT_S, 10 minutes), which read as a hang."""
    import fcntl

    from dbtui.cli import main

    monkeypatch.setattr(launch_lock, "LAUNCH_WAIT_S", 0.3)
    monkeypatch.chdir(tmp_path)
    folder = RunFolder(tmp_path / "runs" / "r").create()
    demo = Path(__file__).resolve().parents[1] / "profiles" / "tiny-demo.toml"
    with open(folder.launching, "w") as other:
        fcntl.flock(other, fcntl.LOCK_EX)  # another launch, inside its checks
        assert main(["run", str(demo), "--set", 'saving.output_dir="runs"', "--set", 'name="r"']) == 2
    err = capsys.readouterr().err
    assert err.count("waiting for another launch into runs/r to check its images and start its trainer") == 1, err
