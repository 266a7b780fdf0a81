"""The run-life commands (report, runs, attach, resume, stop) on awkward run folders: a file name of bytes that are not
UTF-8, a read-only disk, a reused pid, odd folder names, missing or damaged files."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dbtui.cli import main
from engine.events import RunFailed, RunStarted
from engine.runs.folder import RunFolder, RunState
from engine.runs.report import REPORT, write_report
from tests.runs_helpers import run_with_checkpoints, wait_for

UNDECODABLE = "junk\udcff.png"  # what Python makes of the file name b"junk\xff.png"


def _failed_run(path: Path, reason: str = "bad input") -> RunFolder:
    folder = RunFolder(path).create()
    started = RunStarted(run_dir=str(folder.path), profile={}, hardware={}, versions={}, total_steps=3)
    folder.events.write_text(started.to_json() + "\n" + RunFailed(reason=reason, step=0).to_json() + "\n", encoding="utf-8")
    return folder


def test_a_report_names_a_file_of_undecodable_bytes_as_an_escape(tmp_path: Path) -> None:
    folder = _failed_run(tmp_path / "run", f"1 image file(s) cannot be read as pictures: '/data/{UNDECODABLE}'")
    page = write_report(folder.path).read_text(encoding="utf-8")
    assert "junk\\udcff.png" in page


def test_a_report_on_a_read_only_disk_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    folder = _failed_run(tmp_path / "run")

    def read_only(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(Path, "write_text", read_only)
    monkeypatch.setattr(Path, "unlink", read_only)  # removing the partial page fails there as well
    assert main(["report", str(folder.path)]) == 2
    assert "read-only" in capsys.readouterr().err
    assert not (folder.path / REPORT).exists()


def test_a_launch_whose_cleanup_fails_too_says_the_first_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.runs import launcher
    from engine.runs.folder import RunFolderError
    from training_helpers import tiny_profile

    def refused(folder: RunFolder, left: object = None) -> None:
        raise OSError(errno.EACCES, "Permission denied")  # another user's control folder

    unlink = Path.unlink

    def cannot_remove(path: Path, missing_ok: bool = False) -> None:
        if path.name.endswith(".tmp") or path.name == "profile.toml":  # as on a disk gone read-only meanwhile
            raise OSError(errno.EROFS, "Read-only file system")
        unlink(path, missing_ok=missing_ok)

    monkeypatch.setattr(launcher, "drop_requests", refused)
    monkeypatch.setattr(Path, "unlink", cannot_remove)
    with pytest.raises(RunFolderError, match="permission denied"):
        launcher.start_run(tiny_profile(tmp_path), run_dir=tmp_path / "runs" / "new")


def test_a_bugs_traceback_naming_a_file_of_undecodable_bytes_is_written(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from engine.runs.in_process import _report_bug

    said = []
    try:
        raise ValueError(f"cannot open {UNDECODABLE}")
    except ValueError as error:
        _report_bug(said.append, SimpleNamespace(global_step=2), tmp_path, error)
    assert "junk\\udcff.png" in (tmp_path / "traceback.txt").read_text(encoding="utf-8") and len(said) == 1


def _sleeper(*args: str, cwd: Path | None = None) -> subprocess.Popen:
    """A live process whose command reads as a trainer's: it names engine.runs.worker and ``args``."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "engine.runs.worker", *args], cwd=cwd)
    wait_for(lambda: Path(f"/proc/{process.pid}/cmdline").read_bytes(), timeout=10)  # empty until its exec ends
    return process


def test_a_pid_reused_by_another_runs_trainer_is_not_this_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """After a container restart the crashed run's pid went to another run's trainer: `runs` said running, `stop`
    asked no one and `resume` was refused as already running."""
    from engine.runs.trainer_lock import TrainerLock

    other = _sleeper(str(tmp_path / "runs" / "other"))
    try:
        folder = RunFolder(tmp_path / "runs" / "crashed").create()
        folder.events.write_text("", encoding="utf-8")
        folder.write_state(RunState(pid=other.pid, status="running", step=3, total_steps=10, heartbeat=time.time()))
        assert folder.status() == "crashed"
        assert main(["stop", str(folder.path)]) == 2
        assert "(status: crashed)" in capsys.readouterr().err
        folder.lock.write_text(str(other.pid))
        lock = TrainerLock(folder)
        lock.acquire()  # taken over: its owner trains another folder
        lock.release()
    finally:
        other.kill()
        other.wait()


def test_a_trainer_given_its_folder_relative_or_through_a_link_is_alive(tmp_path: Path) -> None:
    (tmp_path / "runs" / "r").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "runs")
    relative, linked = _sleeper("runs/r", cwd=tmp_path), _sleeper(str(tmp_path / "link" / "r"))
    try:
        for trainer in (relative, linked):
            RunFolder(tmp_path / "runs" / "r").write_state(RunState(pid=trainer.pid, status="running"))
            assert RunFolder(tmp_path / "runs" / "r").status() == "running"
            assert RunFolder(tmp_path / "link" / "r").status() == "running"
    finally:
        for trainer in (relative, linked):
            trainer.kill()
            trainer.wait()


def test_runs_elsewhere_are_suggested_quoted_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("odd[red]dir", "my runs"):
        _failed_run(tmp_path / name / "r")
    (tmp_path / "runs").mkdir()
    monkeypatch.chdir(tmp_path)
    assert main(["runs"]) == 0
    out = capsys.readouterr().out
    assert "`dbtui runs 'my runs'`" in out and "`dbtui runs 'odd[red]dir'`" in out and "''" not in out


def test_runs_says_why_a_folder_it_is_given_holds_no_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("COLUMNS", "300")
    assert main(["runs", str(tmp_path / "nowhere")]) == 2
    assert "nowhere' does not exist" in capsys.readouterr().err
    (tmp_path / "a-file").write_text("")
    assert main(["runs", "--dir", str(tmp_path / "a-file")]) == 2
    assert "a-file' is a file, not a folder of runs" in capsys.readouterr().err
    run = _failed_run(tmp_path / "runs" / "r")
    assert main(["runs", str(run.path)]) == 0
    out = capsys.readouterr().out
    assert "/runs/r" in out and f"is a run folder itself; `dbtui attach {run.path}` follows it" in out
    assert main(["runs", str(tmp_path / "runs"), "--dir", str(tmp_path)]) == 2
    assert "name two folders; give one of them" in capsys.readouterr().err
    assert main(["runs", str(tmp_path / "runs"), "--dir", str(tmp_path / "runs")]) == 0
    monkeypatch.chdir(tmp_path)
    assert main(["runs", "runs", "--dir", str(tmp_path / "runs")]) == 0  # one folder spelled two ways
    assert main(["runs", "nowhere", "--dir", str(tmp_path / "nowhere")]) == 2
    assert "nowhere' does not exist" in capsys.readouterr().err


def test_run_resume_before_the_profile_takes_it_as_the_profile(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`dbtui run --resume my.toml`: --resume's optional value took the profile, and argparse said a profile was
    required."""
    from tests.runs_helpers import profile_file

    path = profile_file(tmp_path, name="never")
    assert main(["run", "--resume", str(path)]) == 2
    assert f"there is no run to resume in {tmp_path / 'runs' / 'never'}" in capsys.readouterr().err  # resumed: latest
    assert main(["run", "--resume", str(tmp_path / "runs" / "x" / "checkpoints" / "step-00000004")]) == 2
    assert "`dbtui run PROFILE --resume " in capsys.readouterr().err
    assert main(["run"]) == 2
    assert "give the profile to train: `dbtui run PROFILE`" in capsys.readouterr().err


@pytest.mark.parametrize("given", ["500", "step-00000500"])
def test_resume_from_takes_a_step_or_a_checkpoints_name(given: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """`--from 16` and `--from step-00000016` were refused, though the refusal listed that checkpoint."""
    from engine.runs import launcher

    folder, profile = run_with_checkpoints(tmp_path, [500, 1000])
    asked: list[list[str]] = []
    monkeypatch.setattr(launcher, "worker_command",
                        lambda profile, run_dir, extra: asked.append(list(extra)) or [sys.executable, "-c", "pass"])
    started = launcher.start_run(profile, resume=given, run_dir=folder.path, detach=True)
    started.process.wait(timeout=60)
    assert asked == [["--resume", str(folder.checkpoints / "step-00000500")]]
    assert [path.name for path in (folder.path / "checkpoints-set-aside").glob("*/*")] == ["step-00001000"]
    assert main(["resume", str(folder.path), "--from", "16"]) == 2
    err = capsys.readouterr().err
    assert f"no checkpoint at step 16; the run's kept checkpoints: {folder.checkpoints / 'step-00000500'}" in err


def test_attach_and_report_say_a_run_has_no_events(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """With state.json and no or an empty events.jsonl, attach printed nothing and exited 0, and report said "not a
    run folder" of a run `dbtui runs` lists, or of an empty one wrote a page of no steps and exited 0."""
    folder = RunFolder(tmp_path / "run").create()
    folder.write_state(RunState(pid=os.getpid(), status="failed"))
    for command in ("attach", "report"):
        assert main([command, str(folder.path)]) == 2
        assert "has no events: its events.jsonl is missing (status: failed)" in capsys.readouterr().err
    folder.events.write_text("")
    for command in (["attach", "--plain"], ["report"]):
        assert main([command[0], str(folder.path), *command[1:]]) == 2
        assert "its events.jsonl is empty" in capsys.readouterr().err
    folder.events.write_text("\n  \n{not json\n")  # a log of blank and damaged lines wrote a page of no steps
    assert main(["report", str(folder.path)]) == 2
    assert "no line of its events.jsonl is one dbtui can read (status: failed)" in capsys.readouterr().err
    assert not (folder.path / REPORT).exists()


def test_an_event_log_that_cannot_be_read_is_said(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from engine.runs.follow import EventFollower
    from engine.runs.folder import RunFolderError

    folder = RunFolder(tmp_path / "run").create()
    folder.events.mkdir()  # a folder in its place: attach crashed with IsADirectoryError
    folder.write_state(RunState(pid=os.getpid(), status="stopped"))
    assert main(["attach", str(folder.path), "--plain"]) == 2
    assert "its events.jsonl is not a file (damaged)" in capsys.readouterr().err
    with pytest.raises(RunFolderError, match="cannot read the run's event log .*: Is a directory; it is damaged"):
        list(EventFollower(folder).events(follow=False))


def test_refusals_suggest_commands_that_work(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Resuming a finished run suggested `dbtui run PROFILE …` with PROFILE as it is; stop on a run without its
    profile.toml suggested a resume that fails for the lack of it."""
    import shlex

    folder, _ = run_with_checkpoints(tmp_path, [500])
    folder.write_state(RunState(pid=os.getpid(), status="finished", step=2000, total_steps=2000))
    assert main(["resume", str(folder.path)]) == 2
    assert f"`dbtui run {shlex.quote(str(folder.profile))} --set name=NEW_NAME`" in capsys.readouterr().err
    folder.state_file.unlink()
    folder.profile.unlink()
    assert main(["stop", str(folder.path)]) == 2
    err = capsys.readouterr().err
    assert "(status: unknown); it has no profile.toml to resume it with" in err and "dbtui resume" not in err


def test_export_help_says_an_export_again_keeps_the_previous_one() -> None:
    from dbtui.cli import build_parser

    [commands] = [action for action in build_parser()._actions if action.choices and "export" in action.choices]
    assert "diffusers.previous/" in " ".join(commands.choices["export"].format_help().split())


def test_attach_says_a_run_it_cannot_show_or_that_ended_without_a_last_word(tmp_path: Path,
                                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """With garbage lines alone and no state, attach printed nothing and exited 0; with its state.json gone, a killed
    run replayed and exited 0 with no word of its end; a crashed run without its profile.toml was told to
    `dbtui resume`, which refuses it."""
    from engine.events import StepEnded

    folder = RunFolder(tmp_path / "garbage").create()
    folder.events.write_bytes(b"\x00\xff not json\n[1, 2]\n{\"event\": \"run_started\"}\n")
    assert main(["attach", str(folder.path), "--plain"]) == 2
    assert ("no line of its events.jsonl is one dbtui can read (status: unknown); there is nothing to show"
            in capsys.readouterr().err)

    folder = _failed_run(tmp_path / "killed")
    step = StepEnded(step=1, total_steps=3, epoch=0, loss=0.5, smoothed_loss=0.5, lr=1e-4, it_per_s=1.0, eta_s=2.0)
    folder.events.write_text(folder.events.read_text().splitlines()[0] + "\n" + step.to_json() + "\n", encoding="utf-8")
    assert main(["attach", str(folder.path), "--plain"]) == 1
    err = capsys.readouterr().err
    assert "gone without a last word (crashed)" in err  # its state.json gone: told by its events' end
    assert "`dbtui run PROFILE --resume`" in err and f"dbtui resume {folder.path}" not in err  # it has no profile.toml
    folder.write_state(RunState(pid=os.getpid(), status="running", step=1, total_steps=3))  # a process that is no trainer
    assert main(["attach", str(folder.path), "--plain"]) == 1
    err = capsys.readouterr().err
    assert "gone without a last word (crashed)" in err and "`dbtui run PROFILE --resume`" in err
    assert f"dbtui resume {folder.path}" not in err
