"""A run's status is said in one place (engine.runs.folder.run_status) and in the same word by
the CLI, the wizard's run list and its dashboard: a trainer that is gone without a last word
is "crashed" everywhere."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dbtui.app import make_app
from dbtui.cli import main
from dbtui.engine_facade import RealEngine
from dbtui.screens.training import TrainingScreen
from dbtui.session import Session
from engine.runs.folder import RunFolder, RunState, run_status
from wizard_fakes import FakeEngine, RunSummary, run_events
from wizard_steps import settle


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _run(tmp_path: Path, name: str, status: str, pid: int) -> RunFolder:
    folder = RunFolder(tmp_path / "runs" / name).create()
    folder.events.write_text("", encoding="utf-8")
    # What `dbtui resume` trains: a stopped one's hint names it (an empty one is told as empty).
    folder.profile.write_text("# written by the launch\n", encoding="utf-8")
    folder.write_state(RunState(pid=pid, status=status, step=3, total_steps=10, heartbeat=time.time()))
    return folder


def test_the_status_word_comes_from_the_state_and_the_process(tmp_path: Path, trainer_of) -> None:
    dead = _dead_pid()
    run = tmp_path / "run"
    assert run_status(None, run) == "unknown"
    assert run_status(RunState(pid=trainer_of(run), status="running"), run) == "running"
    # After a reboot or a container restart the crashed trainer's pid may be another live process's,
    assert run_status(RunState(pid=os.getpid(), status="running"), run) == "crashed"
    # another run's trainer's included.
    assert run_status(RunState(pid=trainer_of(tmp_path / "other"), status="running"), run) == "crashed"
    assert run_status(RunState(pid=dead, status="running"), run) == "crashed"
    assert run_status(RunState(pid=dead, status="starting"), run) == "crashed"
    assert run_status(RunState(pid=dead, status="finished"), run) == "finished"  # a finished trainer is meant to be gone


def test_the_cli_and_the_wizard_say_crashed_for_the_same_run(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                             monkeypatch: pytest.MonkeyPatch, trainer_of) -> None:
    crashed = _run(tmp_path, "gone", "running", _dead_pid())
    assert crashed.status() == "crashed" and not crashed.is_live()
    _run(tmp_path, "live", "running", trainer_of(tmp_path / "runs" / "live"))

    monkeypatch.setenv("COLUMNS", "300")  # one table row a line, however long the tmp path
    assert main(["runs", "--dir", str(tmp_path / "runs")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("│")[2].strip() for line in lines if "/gone" in line] == ["crashed"]
    assert [line.split("│")[2].strip() for line in lines if "/live" in line] == ["running"]
    summaries = {run.path.name: run.status for run in RealEngine().list_runs(str(tmp_path / "runs"))}
    assert summaries == {"gone": "crashed", "live": "running"}
    assert [RealEngine().run_status(tmp_path / "runs" / name) for name in ("gone", "live", "none")] == [
        "crashed", "running", "unknown"]

    assert main(["stop", str(crashed.path)]) == 2
    assert f"(status: crashed). No checkpoint was saved yet; `dbtui resume {crashed.path}` trains it from the start" \
        in capsys.readouterr().err
    finished = _run(tmp_path, "done", "finished", _dead_pid())
    assert main(["sample", str(finished.path)]) == 2
    assert f"(status: finished); it finished: its outputs are in {finished.outputs}" in capsys.readouterr().err

    assert main(["attach", str(crashed.path), "--plain"]) == 1
    err = capsys.readouterr().err
    assert "the trainer is gone without a last word (crashed)" in err and "trains it from the start" in err


def test_a_run_that_never_learnt_its_length_shows_no_step_count(tmp_path: Path, capsys, monkeypatch) -> None:
    folder = RunFolder(tmp_path / "runs" / "early").create()
    folder.events.write_text("", encoding="utf-8")
    folder.write_state(RunState(pid=_dead_pid(), status="failed", heartbeat=time.time()))  # failed while loading
    monkeypatch.setenv("COLUMNS", "300")
    assert main(["runs", "--dir", str(tmp_path / "runs")]) == 0
    [row] = [line for line in capsys.readouterr().out.splitlines() if "/early" in line]
    assert [cell.strip() for cell in row.split("│")[2:4]] == ["failed", "-"]  # not "0/0"


class CrashedRunEngine(FakeEngine):
    """A run whose events end mid-training, and whose folder says its trainer is gone."""

    def list_runs(self, output_dir: str, on_skip=None) -> list[RunSummary]:
        return [RunSummary(Path(output_dir) / "x", "crashed", 3, 6)]


async def test_the_dashboard_says_crashed_when_the_trainer_is_gone(tmp_path: Path) -> None:
    events = [e for e in run_events() if e.kind not in ("run_finished",)]
    engine = CrashedRunEngine(events=events)
    session = Session()
    session.run_folder = tmp_path / "runs" / "x"
    app = make_app(engine, session, image_renderer="none")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = TrainingScreen(session, engine)
        app.push_screen(screen)
        await settle(pilot, 0.2)
        assert screen.finished
        assert str(screen.query_one("#tr-phase").render()) == "crashed"
        assert any("dbtui resume" in n.message for n in app._notifications)
        await pilot.press("s")
        await pilot.pause()
        assert ("control", "stop") not in engine.calls  # nothing to ask: the trainer is gone


def test_a_trainer_that_dies_before_writing_anything_reads_as_crashed(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A broken install (the worker module cannot even be imported) must not leave watchers waiting for ever."""
    from engine.runs import launcher
    from engine.runs.follow import EventFollower
    from training_helpers import tiny_profile

    monkeypatch.setattr(launcher, "worker_command",
                        lambda *args: [sys.executable, "-c", "raise SystemExit('No module named engine')"])
    started = launcher.start_run(tiny_profile(tmp_path), run_dir=tmp_path / "runs" / "broken")
    assert started.folder.read_state().pid == started.process.pid
    started.process.wait(timeout=60)
    assert started.folder.status() == "crashed"
    assert list(EventFollower(started.folder).events(poll=0.05)) == []  # it ends instead of waiting
    assert "No module named engine" in started.log.read_text()


def test_commands_to_paste_quote_a_run_path_with_spaces(tmp_path: Path, trainer_of) -> None:
    """`dbtui attach my runs/sp` was printed as it is, and failed when pasted."""
    from engine.runs.folder import RunFolderError
    from engine.runs.trainer_lock import TrainerLock

    folder = RunFolder(tmp_path / "my runs" / "sp").create()
    folder.lock.write_text(str(trainer_of(folder.path)))
    with pytest.raises(RunFolderError) as refused:
        TrainerLock(folder).acquire()
    assert f"`dbtui attach '{folder.path}'`" in str(refused.value) and f"`dbtui stop '{folder.path}'`" in str(refused.value)


def test_two_launches_at_the_same_moment_start_one_trainer_and_refuse_the_other(tmp_path: Path,
                                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Two `dbtui run --detach` at once both said "trainer started"; the second trainer then died on the lock."""
    import threading

    from engine.runs import launcher
    from engine.runs.folder import RunFolderError
    from training_helpers import tiny_profile

    monkeypatch.setattr(launcher, "worker_command",
                        lambda profile, run_dir, extra: [sys.executable, "-c", "import time; time.sleep(60)",
                                                         "engine.runs.worker", str(run_dir)])
    spawn = subprocess.Popen

    def slow_spawn(*args, **kwargs):  # widens the moment between the check and the state written
        time.sleep(0.5)
        return spawn(*args, **kwargs)

    monkeypatch.setattr(launcher.subprocess, "Popen", slow_spawn)
    profile = tiny_profile(tmp_path)
    together = threading.Barrier(2)
    outcomes: list[object] = []

    def launch() -> None:
        together.wait()
        try:
            outcomes.append(launcher.start_run(profile, run_dir=tmp_path / "runs" / "twice", detach=True))
        except RunFolderError as error:
            outcomes.append(error)

    threads = [threading.Thread(target=launch) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    started = [o for o in outcomes if isinstance(o, launcher.StartedRun)]
    refused = [o for o in outcomes if isinstance(o, RunFolderError)]
    try:
        assert (len(started), len(refused)) == (1, 1), outcomes
        assert "already running" in str(refused[0])
        assert started[0].folder.read_state().pid == started[0].process.pid
        assert not started[0].folder.launching.exists()  # neither launch leaves its lock file behind
    finally:
        for run in started:
            run.process.kill()
            run.process.wait()


def test_a_launch_refused_in_a_folder_it_made_leaves_no_folder_and_one_it_cannot_lock_says_its_own_refusal(
        tmp_path: Path) -> None:
    from engine.runs import launcher
    from engine.runs.checkpoints import CheckpointError
    from engine.runs.start_refusals import RunFinishedError
    from training_helpers import tiny_profile

    fresh = tmp_path / "runs" / "fresh"
    with pytest.raises(CheckpointError):
        launcher.start_run(tiny_profile(tmp_path), run_dir=fresh, resume=str(tmp_path / "no-such-checkpoint"))
    assert not fresh.exists()  # not left behind holding only the lock file
    kept = _run(tmp_path, "kept", "finished", 1)
    with pytest.raises(RunFinishedError):
        launcher.start_run(tiny_profile(tmp_path), run_dir=kept.path)
    assert kept.read_state().status == "finished" and kept.events.exists()  # a folder that was there stays whole
    finished = _run(tmp_path, "done", "finished", 1)
    finished.launching.mkdir()  # the lock file cannot be opened, as in a folder of another user's
    with pytest.raises(RunFinishedError, match="holds a finished run"):
        launcher.start_run(tiny_profile(tmp_path), run_dir=finished.path)


def test_a_launch_lock_held_too_long_is_said(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import fcntl

    from engine.runs import launch_lock
    from engine.runs import launcher
    from engine.runs.folder import RunFolderError
    from training_helpers import tiny_profile

    monkeypatch.setattr(launch_lock, "LAUNCH_WAIT_S", 0.3)
    held = RunFolder(tmp_path / "runs" / "stuck").create()
    with open(held.launching, "w") as other:
        fcntl.flock(other, fcntl.LOCK_EX)  # another launcher, stuck inside
        with pytest.raises(RunFolderError, match="another launch into .* for over 0 s"):
            launcher.start_run(tiny_profile(tmp_path), run_dir=held.path)


def test_a_lock_file_removed_while_a_launch_waited_on_it_is_not_taken(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A failed launch removes the lock file it made; one that locks that removed file the same moment would run
    beside a third that locks the new one. The lock taken must be the file that is there."""
    import fcntl

    from engine.runs import launch_lock

    folder = RunFolder(tmp_path / "runs" / "new")
    real_flock = fcntl.flock
    calls = []

    def flock_as_the_file_goes(fd: int, operation: int) -> None:
        if not calls:  # the other launch removes the file between this one's open and its lock
            folder.launching.unlink()
        calls.append(fd)
        real_flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", flock_as_the_file_goes)
    fd, _ = launch_lock._take_launch_lock(folder)
    try:
        assert len(calls) == 2 and os.path.samestat(os.fstat(fd), os.stat(folder.launching))
    finally:
        os.close(fd)


def test_a_folder_removed_between_a_launchs_mkdir_and_open_is_made_again(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A failed launch removes the folder it made; one that had just made it too found no folder to open its lock file
    in, and launched unlocked. The lock must still be taken, in the folder made again."""
    import fcntl

    from engine.runs import launch_lock

    folder = RunFolder(tmp_path / "runs" / "new")
    real_open = os.open
    calls = []

    def open_as_the_folder_goes(path, flags, mode=0o777):
        calls.append(path)
        if len(calls) == 1:  # the other launch removes the folder between this one's mkdir and open
            folder.path.rmdir()
        return real_open(path, flags, mode)

    monkeypatch.setattr(os, "open", open_as_the_folder_goes)
    with launch_lock.launching(folder):
        monkeypatch.setattr(os, "open", real_open)
        assert len(calls) == 2 and folder.launching.is_file()
        with open(folder.launching) as other, pytest.raises(BlockingIOError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held by this launch


def test_a_run_never_starts_among_files_that_are_not_a_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run folder that was the user's project folder (their commented profile.toml, a report.html) or their photos:
    the run wrote its profile and report over theirs, and its folders among them, and said nothing."""
    from engine.runs import launcher
    from engine.runs.folder import RunFolderError
    from training_helpers import tiny_profile

    project = tmp_path / "runs" / "t"
    project.mkdir(parents=True)
    (project / "profile.toml").write_text("# my notes\nname = 't'\n")
    (project / "report.html").write_text("mine")
    with pytest.raises(RunFolderError, match="is not a run folder: it holds profile.toml, report.html"):
        launcher.start_run(tiny_profile(tmp_path))
    assert (project / "profile.toml").read_text() == "# my notes\nname = 't'\n" and (project / "report.html").read_text() == "mine"
    assert sorted(os.listdir(project)) == ["profile.toml", "report.html"]  # nothing of a run made among them

    # What dbtui itself leaves before a run's first state (another machine's profile, the caches, a launch whose trainer
    # could not start) and hidden files are no reason to refuse.
    monkeypatch.setattr(launcher, "worker_command", lambda *args: [sys.executable, "-c", "import time; time.sleep(60)"])
    leftover = RunFolder(tmp_path / "runs" / "left").create()
    (leftover.path / "cache").mkdir()
    (leftover.path / "profile-machine-1.toml").write_text("")
    (leftover.path / ".DS_Store").write_text("")
    spawn = subprocess.Popen

    def no_process(*args, **kwargs):
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(launcher.subprocess, "Popen", no_process)
    with pytest.raises(OSError):
        launcher.start_run(tiny_profile(tmp_path, name="left"))
    assert not leftover.profile.exists()
    monkeypatch.setattr(launcher.subprocess, "Popen", spawn)
    started = launcher.start_run(tiny_profile(tmp_path, name="left"))
    started.process.kill()
    started.process.wait()
    assert started.folder.profile.is_file()


def test_a_started_run_keeps_no_lock_file_of_its_launch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty RUN/.launching stayed in every run folder once its trainer had started; a second launch still waits on
    the lock while the first holds it (test_two_launches_at_the_same_moment_start_one_trainer_and_refuse_the_other)."""
    from engine.runs import launcher
    from training_helpers import tiny_profile

    monkeypatch.setattr(launcher, "worker_command", lambda *args: [sys.executable, "-c", "import time; time.sleep(60)"])
    started = launcher.start_run(tiny_profile(tmp_path), run_dir=tmp_path / "runs" / "once")
    started.process.kill()
    started.process.wait()
    assert started.folder.profile.is_file() and not started.folder.launching.exists()


def test_the_trainer_is_given_its_run_folder_as_an_absolute_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its events name the run's files by it: a run started with a relative output_dir showed outputs at paths that did
    not exist for `dbtui attach` or the report from another folder."""
    from engine.runs import launcher
    from training_helpers import tiny_profile

    given: list[Path] = []

    def worker_command(profile, run_dir, extra=()):
        given.append(run_dir)
        return [sys.executable, "-c", "import time; time.sleep(60)"]

    monkeypatch.setattr(launcher, "worker_command", worker_command)
    monkeypatch.chdir(tmp_path)
    started = launcher.start_run(tiny_profile(tmp_path, saving={"output_dir": "runs"}))
    started.process.kill()
    started.process.wait()
    assert given == [tmp_path / "runs" / "t"]


def test_a_trainer_log_that_cannot_be_opened_is_said_as_the_folders_problem(tmp_path: Path) -> None:
    """Another user's log (or anything not a writable file there) was reported as a bug in dbtui."""
    from engine.runs import launcher
    from engine.runs.folder import RunFolderError
    from training_helpers import tiny_profile

    folder = RunFolder(tmp_path / "runs" / "t").create()
    folder.log.mkdir()
    with pytest.raises(RunFolderError, match="cannot use the folder"):
        launcher.start_run(tiny_profile(tmp_path))
    assert not folder.profile.exists()  # the launch's own, taken back: the folder takes the next launch


def test_requests_that_cannot_be_dropped_refuse_the_launch_as_an_unusable_folder(tmp_path: Path,
                                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """An EACCES or EROFS there escaped start_run raw, leaving the launch's profile behind."""
    import errno

    from engine.runs import launcher
    from engine.runs.folder import RunFolderError
    from training_helpers import tiny_profile

    def refused(folder: RunFolder, left: object = None) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", str(folder.control / "stop"))

    monkeypatch.setattr(launcher, "drop_requests", refused)
    fresh = tmp_path / "runs" / "fresh"
    with pytest.raises(RunFolderError, match=f"cannot use the folder {fresh}: permission denied"):
        launcher.start_run(tiny_profile(tmp_path), run_dir=fresh)
    assert not (fresh / "profile.toml").exists()


def test_the_wizard_tells_a_run_folder_of_the_users_own_files_its_own_way(tmp_path: Path) -> None:
    """Train in the wizard on a folder of the user's files said the CLI's `dbtui run PROFILE --set name=NEW_NAME`,
    which the wizard's user has no shell command for."""
    from dbtui.engine_facade import RealEngine
    from dbtui.screens.run_life import NotStarted, start_outcome
    from training_helpers import tiny_profile

    project = tmp_path / "runs" / "t"
    project.mkdir(parents=True)
    (project / "photo.jpg").write_bytes(b"mine")
    message, folder = start_outcome(RealEngine(), tiny_profile(tmp_path), None)
    assert isinstance(message, NotStarted) and folder is None
    assert message.reason == f"{project} is not a run folder: it holds photo.jpg, which the run would write over or mix with its own files"
    assert "Go back (Esc) to Parameters and give the run a name of its own" in message.advice
    assert "--set" not in message.reason + message.advice and os.listdir(project) == ["photo.jpg"]


def test_a_run_whose_failure_is_in_its_events_but_not_its_state_file_is_failed_not_crashed(tmp_path: Path) -> None:
    """A disk full in set-up took the run's failure ("the disk is full … free some space") in events.jsonl, then
    refused state.json's: `dbtui runs` said "crashed", which is a trainer gone without a word."""
    from engine.events import RunFailed, RunStarted

    folder = _run(tmp_path, "full", "starting", _dead_pid())
    started = folder.read_state().started
    with folder.events.open("a", encoding="utf-8") as events:
        events.write(RunFailed(reason="the disk is full", advice="free some space", step=0).to_json() + "\n")
    assert folder.status() == "failed"
    # An earlier attempt's failure, before this attempt's trainer started (then killed in its set-up), is not this one's.
    earlier = _run(tmp_path, "earlier", "starting", _dead_pid())
    with earlier.events.open("a", encoding="utf-8") as events:
        events.write(RunFailed(reason="x", advice="y", step=0, time=started - 60).to_json() + "\n")
    assert earlier.status() == "crashed"
    resumed = _run(tmp_path, "resumed", "starting", _dead_pid())  # a failure followed by a later start is not the end
    with resumed.events.open("a", encoding="utf-8") as events:
        events.write(RunFailed(reason="x", advice="y", step=0).to_json() + "\n")
        events.write(RunStarted(run_dir="r", profile={}, hardware={}, versions={}, total_steps=10).to_json() + "\n")
    assert resumed.status() == "crashed"
