"""`dbtui run` on a machine other than 0: it waits for machine 0 until its trainer says they met, Ctrl-C ends a trainer
that never met it, and `dbtui stop` there says what controls the run."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest

import dbtui.cli.other_machine as other_machine
import engine.runs.worker as worker
from dbtui.cli.boundary import EXIT_INTERRUPTED
from dbtui.cli.cmd_runs import find_run
from engine.errors import DbtuiError
from engine.runs.meeting import MET, MeetingInLog, machine_trainer, pid_file, running_pid, write_pid
from tests.runs_helpers import ROOT, env, wait_for
from tests.training_helpers import tiny_profile


@pytest.fixture
def launcher(tmp_path: Path):
    """A stand-in for machine 1's accelerate launcher: a process of its own session, as the launcher starts it."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
    yield process
    if process.poll() is None:
        process.kill()
        process.wait()


def started(tmp_path: Path, process: subprocess.Popen, log_lines: str) -> SimpleNamespace:
    log = tmp_path / "run" / "logs" / "trainer-machine-1.log"
    log.parent.mkdir(parents=True)
    log.write_text("an earlier start's line: " + MET + "\n", encoding="utf-8")
    start = log.stat().st_size
    with log.open("a", encoding="utf-8") as file:
        file.write(log_lines)
    return SimpleNamespace(folder=SimpleNamespace(path=tmp_path / "run"), machine_rank=1, process=process, log=log,
                           log_offset=start, meets_at="10.0.0.1:29500")


def interrupted(*args) -> int:
    raise KeyboardInterrupt


def test_a_machine_that_never_reached_machine_0_waits_for_it_and_a_ctrl_c_ends_it(
        tmp_path: Path, launcher, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """It said "machine 1 joined the run" and, at Ctrl-C, to stop the run on a machine 0 that was never there, while its
    launcher retried for a quarter of an hour at a time, which only `kill` ended."""
    monkeypatch.setattr(other_machine, "_wait", interrupted)
    status = other_machine.show_other_machine(started(tmp_path, launcher, "accelerate's warnings\n"), detach=False)
    out, err = capsys.readouterr()
    assert status == EXIT_INTERRUPTED
    assert f"machine 1 started (pid {launcher.pid}): it waits for machine 0 at 10.0.0.1:29500" in out
    assert "joined" not in out
    assert ("this machine's trainer is ended before its log said it met machine 0 at 10.0.0.1:29500: this machine "
            "trained nothing, but if machine 0 was meeting it just then, machine 0's run fails too: check it there. If "
            "it waited long, check that machine 0 runs") in err  # a SIGTERM inside the meeting fails machine 0's run
    assert launcher.poll() is not None  # its whole group, ended


def test_a_trainer_that_met_machine_0_as_it_was_ended_is_not_said_to_have_trained_nothing(
        tmp_path: Path, launcher, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """Ended between the meeting and its line in the log, it was said that "machine 0 was never reached … nothing was
    trained", while machine 0's run was failing for want of it."""
    run = started(tmp_path, launcher, "accelerate's warnings\n")

    def end_after_the_meeting(process) -> list[int]:
        with run.log.open("a", encoding="utf-8") as log:
            log.write(MET + " (2 processes)\n")
        process.kill()
        process.wait()
        return []

    monkeypatch.setattr(other_machine, "_wait", interrupted)
    monkeypatch.setattr(other_machine, "end_processes", end_after_the_meeting)
    assert other_machine.show_other_machine(run, detach=False) == EXIT_INTERRUPTED
    err = capsys.readouterr().err
    assert "just after it had met machine 0: the run fails on every machine" in err and "trained nothing" not in err


# A trainer as torch elastic starts one, in a session of its own; this one only takes note of a SIGTERM.
TRAINER = """
import os, signal, sys
signal.signal(signal.SIGTERM, signal.SIG_IGN)
with open(sys.argv[1] + ".tmp", "w") as file:
    file.write(str(os.getpid()))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
signal.pause()
"""
LAUNCHER = "import signal, subprocess, sys; subprocess.Popen([sys.executable, '-c', sys.argv[1], sys.argv[2]], " \
           "start_new_session=True); signal.pause()"


def test_ending_this_machines_part_reaches_trainers_outside_the_launchers_group(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """torch elastic starts each trainer in a session of its own: the signal to the launcher's group ended the launcher
    alone, and the trainers went on, orphaned, after "nothing was trained". The SIGKILL went to the launcher's group
    even once the launcher was reaped, when its number may be another process's group."""
    named = tmp_path / "trainer.pid"
    launcher = subprocess.Popen([sys.executable, "-c", LAUNCHER, TRAINER, str(named)], start_new_session=True)
    trainer = None
    groups_signalled_after_reaping = []
    real_killpg = os.killpg

    def killpg(group: int, signum: int) -> None:
        if launcher.returncode is not None:
            groups_signalled_after_reaping.append(group)
        real_killpg(group, signum)

    try:
        trainer = psutil.Process(int(wait_for(lambda: named.exists() and named.read_text(), timeout=60)))
        monkeypatch.setattr(other_machine, "END_GRACE_S", 0.5)  # this trainer never ends on a SIGTERM
        monkeypatch.setattr(os, "killpg", killpg)
        assert other_machine.end_processes(launcher) == []
        assert launcher.poll() is not None and not _running(trainer)
        assert groups_signalled_after_reaping == []
    finally:
        for process in (launcher, trainer):
            with contextlib.suppress(psutil.Error, ProcessLookupError, AttributeError):
                process.kill()
        launcher.wait()


def _running(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE  # an orphan is reaped by whoever took it, or not at all
    except psutil.NoSuchProcess:
        return False


# Machine 1's trainer while machine 0 is not there yet: torch waits for it in C++, where no Python handler runs.
WAITING_FOR_MACHINE_0 = """
import sys, threading
from pathlib import Path
import engine.training.distributed as distributed


def meeting():
    Path(sys.argv[2]).write_text("waiting", encoding="utf-8")
    threading.Event().wait(300)


distributed.process_state = meeting
from engine.runs.worker import main
sys.exit(main([sys.argv[1], "--profile", sys.argv[1] + "/profile-machine-1.toml"]))
"""


def test_before_it_met_machine_0_another_machines_trainer_ends_at_once_on_a_sigterm(tmp_path: Path) -> None:
    """It only took note of it, for after the meeting: torch elastic, asked to end, waited 30 s before its SIGKILL, and
    `dbtui run` had killed the launcher by then, so the trainers lived on. Told by its own profile, not by GROUP_RANK,
    which --rdzv_backend c10d gives in the order the machines arrive: 0 here."""
    waiting = tmp_path / "waiting"
    trainer = subprocess.Popen([sys.executable, "-c", WAITING_FOR_MACHINE_0, str(tmp_path / "run"), str(waiting)],
                               cwd=ROOT, env=dict(env(), GROUP_RANK="0", RANK="1", LOCAL_RANK="0"))
    try:
        wait_for(waiting.exists, timeout=120)
        # It holds this machine's lock while it waits: a second launcher is refused even once its own is killed.
        assert machine_trainer(tmp_path / "run" / "logs" / "profile-machine-1.lock") == trainer.pid
        trainer.send_signal(signal.SIGTERM)
        assert trainer.wait(timeout=30) == -signal.SIGTERM
    finally:
        trainer.kill()
        trainer.wait()


def test_machine_0s_trainer_keeps_a_stop_for_later_whatever_group_rank_the_rendezvous_gave_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """GROUP_RANK 1 (c10d numbers machines as they arrive) took machine 0's trainer for one that waits for machine 0:
    a SIGTERM in set-up ended it at once, leaving the run "starting"."""
    monkeypatch.setenv("GROUP_RANK", "1")
    monkeypatch.setenv("RANK", "1")  # takes no trainer lock
    monkeypatch.setattr(worker, "_train", lambda *args: signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL)
    assert worker.main([str(tmp_path / "run")]) is True  # its handlers are put back after the test (conftest)


def test_once_met_a_ctrl_c_leaves_the_trainer_training_with_the_run(
        tmp_path: Path, launcher, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setattr(other_machine, "_wait", interrupted)
    status = other_machine.show_other_machine(started(tmp_path, launcher, MET + " (2 processes)\n"), detach=False)
    assert status == EXIT_INTERRUPTED and launcher.poll() is None
    err = capsys.readouterr().err
    assert "goes on with the run" in err and f"`dbtui stop {tmp_path / 'run'}` on machine 0" in err


def test_the_meeting_line_is_read_from_this_start_even_cut_between_two_reads(tmp_path: Path) -> None:
    log = tmp_path / "trainer-machine-1.log"
    log.write_text(MET + "\n", encoding="utf-8")
    meeting = MeetingInLog(log, log.stat().st_size)
    assert not meeting.check()  # an earlier start's line does not count
    with log.open("a", encoding="utf-8") as file:
        file.write("warnings\n" + MET[:10])
    assert not meeting.check()
    with log.open("a", encoding="utf-8") as file:
        file.write(MET[10:] + " (2 processes)\n")
    assert meeting.check()


def test_stop_on_another_machine_says_where_the_run_is_controlled_and_what_ends_this_machines_part(
        tmp_path: Path, launcher) -> None:
    """`dbtui stop` there said "not a run folder (no events.jsonl)"."""
    run = tmp_path / "run"
    (run / "logs").mkdir(parents=True)
    (run / "profile-machine-1.toml").write_text("", encoding="utf-8")
    write_pid(run / "logs" / "trainer-machine-1.log", launcher.pid)
    with pytest.raises(DbtuiError) as refused:
        find_run(str(run), "runs")
    said = str(refused.value)
    assert "holds machine 1's part of a run of several machines" in said and "stop the run there" in said
    assert f"kill {launcher.pid}" in said
    launcher.kill()
    launcher.wait()
    with pytest.raises(DbtuiError, match="No trainer of it was found on this machine") as refused:
        find_run(str(run), "runs")
    # `dbtui resume` there named no way to resume this machine's part: it said only to watch the run on machine 0.
    # Its own disk holds no checkpoint (machine 0 writes them): `--resume` there found none to resume from.
    said = str(refused.value)
    assert "`dbtui run PROFILE --set launch.machine_rank=1` trains this machine's part again" in said
    assert "copy it here and add --resume" in said and str(run / "profile-machine-1.toml") in said
    (run / "checkpoints" / "step-00000004").mkdir(parents=True)  # machine 0's checkpoint, copied in
    (run / "checkpoints" / "step-00000004" / "manifest.json").write_text('{"step": 4}', encoding="utf-8")
    with pytest.raises(DbtuiError) as refused:
        find_run(str(run), "runs")
    assert "`dbtui run PROFILE --resume --set launch.machine_rank=1` resumes this machine's part" in str(refused.value)


def test_a_ctrl_c_after_the_launcher_was_reaped_signals_no_process_that_took_its_pid(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The launcher's pid was looked up before asking whether it had been reaped: by then the number may be another
    process's, whose children were sent SIGTERM, then SIGKILL."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    monkeypatch.setattr(other_machine, "_as_psutil", lambda pid: pytest.fail(f"looked up pid {pid}, reaped"))
    assert other_machine.end_processes(process) == []


def test_a_pid_file_is_believed_only_while_it_names_the_very_launcher_that_wrote_it(tmp_path: Path, launcher) -> None:
    """A bare pid, never removed, named whatever process had the number after a reboot or a wrap (the user's shell, a
    `sleep`), and `dbtui stop` told the user to `kill` it."""
    log = tmp_path / "trainer-machine-1.log"
    write_pid(log, launcher.pid)
    assert running_pid(log) == launcher.pid
    started_at = float(pid_file(log).read_text(encoding="utf-8").split()[1])
    pid_file(log).write_text(f"{launcher.pid} {started_at - 3600!r}\n", encoding="utf-8")  # the number, given again
    assert running_pid(log) is None
    pid_file(log).write_text(f"{launcher.pid}\n", encoding="utf-8")  # an older dbtui's: whose, nobody can tell
    assert running_pid(log) is None


def test_the_pid_file_goes_when_this_machines_launcher_ends(tmp_path: Path, launcher, monkeypatch: pytest.MonkeyPatch) -> None:
    run = started(tmp_path, launcher, "")
    write_pid(run.log, launcher.pid)
    monkeypatch.setattr(other_machine, "_wait", lambda process, meeting, rank: (process.kill(), process.wait())[1])
    other_machine.show_other_machine(run, detach=False)
    assert not pid_file(run.log).exists()


def test_a_second_launcher_for_the_same_machine_is_refused_while_the_first_lives(
        tmp_path: Path, launcher, monkeypatch: pytest.MonkeyPatch) -> None:
    """It overwrote the first one's pid, and its `dbtui run` took the first trainer's line in the shared log for its
    own meeting: "machine 1 met machine 0" of a launcher that had met nobody."""
    import engine.runs.launcher as launching

    profile = tiny_profile(tmp_path, launch={"num_processes": 2, "num_machines": 2, "main_process_ip": "127.0.0.1",
                                             "machine_rank": 1})
    run = tmp_path / "run"
    (run / "logs").mkdir(parents=True)
    write_pid(run / "logs" / "trainer-machine-1.log", launcher.pid)
    monkeypatch.setattr(launching, "subprocess", SimpleNamespace(Popen=None))  # it must start nothing
    with pytest.raises(launching.MachineLiveError, match=f"machine 1 of the run in {run} is already started on this "
                                                         f"machine \\(pid {launcher.pid}\\)"):
        launching.start_run(profile, run_dir=run)
    assert not (run / "profile-machine-1.toml").exists()


# A trainer of machine 1 whose launcher was killed hard: torch elastic started it in a session of its own.
ORPHANED_TRAINER = """
import sys, threading
from pathlib import Path
from engine.runs.meeting import hold_machine_lock
hold_machine_lock(Path(sys.argv[1]))
Path(sys.argv[2]).write_text("held", encoding="utf-8")
threading.Event().wait(300)
"""


def test_a_second_launcher_is_refused_while_trainers_of_a_killed_launcher_live_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the launcher's pid was looked at: its trainers, orphaned by a `kill -9` or the OOM killer, went on waiting in
    the meeting beside a new launch, sharing its log (their line read as its meeting) and its ranks."""
    import engine.runs.launcher as launching

    profile = tiny_profile(tmp_path, launch={"num_processes": 2, "num_machines": 2, "main_process_ip": "127.0.0.1",
                                             "machine_rank": 1})
    run = tmp_path / "run"
    (run / "logs").mkdir(parents=True)
    held = tmp_path / "held"
    trainer = subprocess.Popen([sys.executable, "-c", ORPHANED_TRAINER, str(run / "logs" / "profile-machine-1.lock"),
                                str(held)], cwd=ROOT, env=env())
    try:
        wait_for(held.exists, timeout=60)
        monkeypatch.setattr(launching, "subprocess", SimpleNamespace(Popen=None))  # it must start nothing
        with pytest.raises(launching.MachineLiveError, match=f"still trained by trainers whose launcher has ended "
                                                             f"\\(the first: pid {trainer.pid}\\), on this machine or"):
            launching.start_run(profile, run_dir=run)
    finally:
        trainer.kill()
        trainer.wait()
    assert machine_trainer(run / "logs" / "profile-machine-1.lock") is None  # freed by its end, however it ended


def test_dbtui_runs_on_another_machine_names_its_part_of_a_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`dbtui runs` on machine 1 said "no runs", where its run folder holds its part of the run (no events: machine
    0 keeps those)."""
    from dbtui.cli import main

    run = tmp_path / "runs" / "person"
    (run / "logs").mkdir(parents=True)
    (run / "profile-machine-1.toml").write_text("", encoding="utf-8")
    for given in (tmp_path / "runs", run):
        assert main(["runs", str(given)]) == 0
        out = capsys.readouterr().out
        assert f"{run}: machine 1's part of a run of several machines; machine 0 lists" in out and "no runs" not in out
    (run / "profile-machine-1.toml").unlink()
    assert main(["runs", str(tmp_path / "runs")]) == 0
    assert "no runs in" in capsys.readouterr().out


def test_a_sigterm_before_the_meeting_ends_the_trainer_as_a_ctrl_c_does(
        tmp_path: Path, launcher, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """`timeout 120 dbtui run` on machine 1: the SIGTERM ended `dbtui run` alone, leaving its trainer, in a session of
    its own, waiting for a machine 0 that never came until it was killed by pid."""
    def terminated(*args) -> int:
        os.kill(os.getpid(), signal.SIGTERM)
        return 0  # not reached where the SIGTERM is taken as a Ctrl-C

    monkeypatch.setattr(other_machine, "_wait", terminated)
    before = signal.signal(signal.SIGTERM, lambda *args: None)  # without the fix: this test's process lives on
    try:
        status = other_machine.show_other_machine(started(tmp_path, launcher, "accelerate's warnings\n"), detach=False)
    finally:
        signal.signal(signal.SIGTERM, before)
    assert status == EXIT_INTERRUPTED
    assert launcher.poll() is not None
    assert "ended before its log said it met machine 0" in capsys.readouterr().err


def test_a_run_stopped_on_machine_0_is_not_said_finished_on_this_machine(
        tmp_path: Path, launcher, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """`dbtui stop` on machine 0 ends machine 1's trainer with status 0, as a finished run: machine 1 said 'this
    machine's trainer finished', with no word that the run waits to be resumed, here too."""
    from engine.runs.meeting import say_ended

    say_ended("stopped", 56)  # what machine 1's first trainer process writes into its log
    run = started(tmp_path, launcher, MET + " (2 processes)\n" + capsys.readouterr().out)
    run.folder.checkpoints = run.folder.path / "checkpoints"
    monkeypatch.setattr(other_machine, "_wait", lambda process, meeting, rank: 0)
    assert other_machine.show_other_machine(run, detach=False) == 0
    said = capsys.readouterr().out
    assert "finished" not in said
    assert said.endswith(
        "this machine's trainer stopped with the run at step 56 (stopped on machine 0, after its checkpoint). To go on: "
        "`dbtui run PROFILE --resume --set launch.machine_rank=1` resumes this machine's part from the latest "
        "checkpoint, as machine 0 resumes the run (add the --set values this machine was started with: they are kept "
        f"in {tmp_path / 'run' / 'profile-machine-1.toml'}); on a disk of its own, once machine 0's "
        f"checkpoints/step-00000056 is copied into {tmp_path / 'run' / 'checkpoints'}/\n")


def test_a_run_whose_final_export_failed_on_machine_0_is_not_said_finished_on_this_machine(
        tmp_path: Path, launcher, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from engine.runs.meeting import say_ended

    say_ended("export failed", 40)
    run = started(tmp_path, launcher, MET + " (2 processes)\n" + capsys.readouterr().out)
    run.folder.checkpoints = run.folder.path / "checkpoints"
    monkeypatch.setattr(other_machine, "_wait", lambda process, meeting, rank: 0)
    assert other_machine.show_other_machine(run, detach=False) == 1
    assert capsys.readouterr().err.startswith(
        "this machine's trainer ended with the run: its final export failed on machine 0 after step 40 (machine 0 says "
        "why; the weights trained are kept in the checkpoint of that step). Once that is fixed, to export them: "
        "`dbtui run PROFILE --resume --set launch.machine_rank=1` resumes this machine's part")


def test_a_trainer_that_failed_here_says_why_before_a_long_elastic_report(
        tmp_path: Path, launcher, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """With 2 processes on machine 1, torch elastic's report of the failed processes (about 45 lines) pushed the
    trainer's own line out of the 40 last lines read: machine 1 said only 'stopped with exit status 1; see its log'."""
    why = "dbtui trainer: machine 1's profile differs from machine 0's in 1 setting(s)"
    run = started(tmp_path, launcher, MET + " (3 processes)\n" + why + "\n" + "elastic's report\n" * 45)
    monkeypatch.setattr(other_machine, "_wait", lambda process, meeting, rank: 1)
    assert other_machine.show_other_machine(run, detach=False) == 1
    assert f"this machine's trainer stopped with exit status 1: {why}; see its log" in capsys.readouterr().err


def test_a_run_stopped_on_machine_0_names_the_profile_this_machine_was_started_with(
        tmp_path: Path, launcher, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """`dbtui run two.toml` on machine 1, stopped on machine 0: its resume command said `dbtui run PROFILE --resume`,
    a placeholder for the file this very command was given."""
    import engine.runs.launcher as launching
    from dbtui.cli import main
    from engine.runs.meeting import say_ended
    from engine.profile.io import save_profile

    launch = {"num_processes": 2, "num_machines": 2, "main_process_ip": "127.0.0.1"}
    path = save_profile(tiny_profile(tmp_path, launch=launch), tmp_path / "my two.toml")
    say_ended("stopped", 56)
    run = started(tmp_path, launcher, MET + " (2 processes)\n" + capsys.readouterr().out)
    run.folder.checkpoints, run.changed, run.main_machine = run.folder.path / "checkpoints", "", False
    monkeypatch.setattr(launching, "start_run", lambda *args, **kwargs: run)
    monkeypatch.setattr(other_machine, "_wait", lambda process, meeting, rank: 0)
    assert main(["run", str(path), "--set", "launch.machine_rank=1"]) == 0
    said = capsys.readouterr().out
    assert f"To go on: `dbtui run '{path}' --resume --set launch.machine_rank=1` resumes this machine's part" in said
    assert "PROFILE" not in said
