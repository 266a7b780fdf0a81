"""Following a run folder's events: a resumed run is one run, and Ctrl-C never replays the log."""

from __future__ import annotations

import contextlib
from pathlib import Path

from dbtui.cli.watch import watch
from engine.events import RunFinished, RunStarted, StepEnded
from engine.runs.folder import RunFolder
from engine.runs.follow import follow_events


def _started(resumed: int = 0) -> RunStarted:
    return RunStarted(run_dir="r", profile={}, hardware={}, versions={}, total_steps=120, resumed_from_step=resumed)


def _step(step: int) -> StepEnded:
    return StepEnded(step=step, total_steps=120, epoch=0, loss=0.1, smoothed_loss=0.1, lr=1e-4, it_per_s=1.0, eta_s=1.0)


def _write(folder: RunFolder, *events) -> None:
    with folder.events.open("a", encoding="utf-8") as file:
        for event in events:
            file.write(event.to_json() + "\n")


def test_a_stopped_then_resumed_run_replays_to_its_real_end(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path / "run").create()
    _write(folder, _started(), _step(43), RunFinished(step=43, outputs={}, seconds=1.0, status="stopped"),
           _started(resumed=43), _step(120), RunFinished(step=120, outputs={"diffusers": "x"}, seconds=2.0))
    events = list(follow_events(folder))
    assert [e.kind for e in events][-3:] == ["run_started", "step_ended", "run_finished"]
    assert events[-1].status == "finished" and events[-1].step == 120


def test_a_half_written_last_line_waits_for_its_end(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path / "run").create()
    _write(folder, _started())
    with folder.events.open("a", encoding="utf-8") as file:
        file.write(_step(1).to_json()[:20])
    assert [e.kind for e in follow_events(folder, follow=False)] == ["run_started"]


class _Process:
    """A trainer that is still running until the watcher has seen the end."""

    def __init__(self, folder: RunFolder) -> None:
        self.folder = folder
        self.signals: list[int] = []

    def send_signal(self, signum: int) -> None:
        self.signals.append(signum)

    def poll(self) -> int | None:
        return 0 if "run_finished" in self.folder.events.read_text(encoding="utf-8") else None

    def wait(self) -> int:
        return 0


def test_ctrl_c_while_watching_goes_on_without_showing_any_event_twice(tmp_path: Path, capsys) -> None:
    folder = RunFolder(tmp_path / "run").create()
    _write(folder, _started(), _step(1), _step(2))
    shown: list[str] = []
    interrupts = iter([True])

    def display(event) -> None:
        shown.append(f"{event.kind}:{getattr(event, 'step', '')}")
        if event.kind == "step_ended" and event.step == 2 and next(interrupts, False):
            _write(folder, _step(3), RunFinished(step=3, outputs={}, seconds=1.0, status="stopped"))
            raise KeyboardInterrupt

    watched = watch(folder, _DisplayCall(display), _Process(folder))
    last = watched.last
    assert watched.interrupted
    assert shown == ["run_started:", "step_ended:1", "step_ended:2", "step_ended:3", "run_finished:3"]
    assert last is not None and last.kind == "run_finished"
    assert "stopping" in capsys.readouterr().err


class _DisplayCall:
    def __init__(self, function) -> None:
        self.function = function

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass

    def __call__(self, event) -> None:
        self.function(event)


class _Killed:
    """A trainer that ended (a second Ctrl-C: os._exit) without writing its last event."""

    def poll(self) -> int:
        return 130

    def wait(self) -> int:
        return 130


def test_a_trainer_stopped_at_once_says_so_and_shows_only_this_starts_log(tmp_path: Path, capsys) -> None:
    folder = RunFolder(tmp_path / "run").create()
    folder.profile.write_text("# written by the launch\n", encoding="utf-8")
    folder.log.write_text("an earlier start's last line\n", encoding="utf-8")
    start = folder.log.stat().st_size
    with folder.log.open("a", encoding="utf-8") as log:
        log.write("this start's last line\n")
    _write(folder, _started(), _step(1))

    interrupts = iter([True])

    def interrupt(event) -> None:
        if next(interrupts, False):
            raise KeyboardInterrupt

    watched = watch(folder, _DisplayCall(interrupt), _Killed(), log_start=start)
    assert watched.interrupted and watched.last is not None and watched.last.kind == "step_ended"
    err = capsys.readouterr().err
    assert "stopped at once, without saving" in err and "No checkpoint was saved yet" in err

    watched = watch(folder, _DisplayCall(lambda event: None), _Killed(), log_start=start)
    err = capsys.readouterr().err
    assert not watched.interrupted and "stopped unexpectedly" in err and "No checkpoint was saved yet" in err
    assert "this start's last line" in err and "an earlier start's" not in err


class _Stoppable:
    """A trainer that writes its last event once it is sent SIGTERM."""

    def __init__(self, folder: RunFolder) -> None:
        self.folder = folder
        self.signals: list[int] = []

    def send_signal(self, signum: int) -> None:
        self.signals.append(signum)
        _write(self.folder, RunFinished(step=1, outputs={}, seconds=1.0, status="stopped"))

    def poll(self) -> int | None:
        return 0 if self.signals else None

    def wait(self) -> int:
        return 0


def test_sigterm_while_watching_stops_the_trainer_as_a_first_ctrl_c_would(tmp_path: Path, capsys) -> None:
    import os
    import signal

    folder = RunFolder(tmp_path / "run").create()
    _write(folder, _started(), _step(1))
    trainer = _Stoppable(folder)
    sent = iter([True])

    def terminate_once(event) -> None:
        if event.kind == "step_ended" and next(sent, False):  # once a step is trained, a stop saves one
            os.kill(os.getpid(), signal.SIGTERM)

    before = signal.getsignal(signal.SIGTERM)
    watched = watch(folder, _DisplayCall(terminate_once), trainer)
    assert trainer.signals == [signal.SIGTERM]
    assert watched.interrupted and watched.last.kind == "run_finished"
    assert "stopping: saving a checkpoint" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) is before


def _ends_then_signals(folder: RunFolder, signum: int) -> _DisplayCall:
    """A display that, at the first step (a stop from then on saves a checkpoint), writes the run's end (as the trainer
    would once stopped), then sends this process ``signum``."""
    import os

    sent = iter([True])

    def once(event) -> None:
        if event.kind == "step_ended" and next(sent, False):
            _write(folder, RunFinished(step=1, outputs={}, seconds=1.0, status="stopped"))
            os.kill(os.getpid(), signum)

    return _DisplayCall(once)


def test_sigterm_asks_a_trainer_in_its_own_session_to_stop_through_the_run_folder(tmp_path: Path, capsys) -> None:
    """accelerate's launcher, sent SIGTERM, kills its trainers 30 s later, in the middle of their last checkpoint:
    it gets no signal, and every process of the run takes the stop from the run folder."""
    import signal

    folder = RunFolder(tmp_path / "run").create()
    _write(folder, _started(), _step(1))
    trainer = _Process(folder)
    before = signal.getsignal(signal.SIGTERM)
    watched = watch(folder, _ends_then_signals(folder, signal.SIGTERM), trainer, own_session=True)
    assert trainer.signals == [] and (folder.control / "stop").exists()
    assert watched.interrupted and watched.last.kind == "run_finished"
    assert "stopping: saving a checkpoint" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) is before


def test_ctrl_c_is_heard_even_where_sigint_was_inherited_as_ignored(tmp_path: Path, capsys) -> None:
    """A shell's background job starts with SIGINT ignored; the trainer answers it anyway, so the watcher must too."""
    import signal

    folder = RunFolder(tmp_path / "run").create()
    _write(folder, _started(), _step(1))
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    trainer = _Process(folder)
    try:
        watched = watch(folder, _ends_then_signals(folder, signal.SIGINT), trainer)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # put back as it was
    finally:
        signal.signal(signal.SIGINT, before)
    assert watched.interrupted and watched.last.kind == "run_finished"
    # A SIGINT to the watcher alone (`kill -INT`) never reached the trainer: it trained on to the end. Now the lone
    # trainer of a foreground run is sent SIGTERM, which it hears in every phase.
    assert trainer.signals == [signal.SIGTERM]


def test_two_sigints_to_the_watcher_alone_after_training_end_the_trainer_at_once_as_said(tmp_path: Path) -> None:
    """During the final scoring round, a stop asked in the run folder was never read (the trainer reads it only until
    its last step): the second SIGINT, passed on, was a first stop to it, and it finished the run, while the watcher
    said it quit at once and named the checkpoint to resume from."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from dbtui.cli.watch import _signals_as_interrupts

    folder = RunFolder(tmp_path / "run").create()
    ready = tmp_path / "ready"
    trainer = subprocess.Popen(  # the trainer's own signal handling, its training over
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from engine.runs.folder import RunFolder; "
         "from engine.runs.supervisor import Supervisor; s = Supervisor(RunFolder(Path(sys.argv[1]))); "
         "s.install_signals(); s.training = True; Path(sys.argv[2]).write_text('1'); time.sleep(60)",
         str(folder.path), str(ready)])
    try:
        deadline = time.time() + 60
        while not ready.exists() and time.time() < deadline:
            time.sleep(0.05)
        interrupts = 0
        with _signals_as_interrupts(trainer, folder, own_session=False):
            for _ in range(2):
                try:
                    os.kill(os.getpid(), signal.SIGINT)
                except KeyboardInterrupt:
                    interrupts += 1
                time.sleep(0.5)  # `kill -INT; sleep 0.2; kill -INT`: the trainer takes each in turn
        assert interrupts == 2
        assert trainer.wait(timeout=10) == 130  # os._exit(130): ended at once, as a second Ctrl-C ends it
    finally:
        trainer.kill()
        trainer.wait()


def test_following_ends_where_no_trainer_lives_and_the_log_will_never_end(tmp_path: Path) -> None:
    """A finished log with junk after its end (a power loss), or a log without an end and a damaged state file:
    no trainer will write more, so attach ends instead of waiting for ever."""
    import threading

    from engine.runs.folder import RunState

    junk = RunFolder(tmp_path / "junk").create()
    _write(junk, _started(), _step(120), RunFinished(step=120, outputs={}, seconds=1.0))
    with junk.events.open("ab") as file:
        file.write(b"\0" * 4000)
    junk.write_state(RunState(pid=1, status="finished", step=120, total_steps=120))
    cut = RunFolder(tmp_path / "cut").create()
    _write(cut, _started(), _step(3))
    cut.state_file.write_text('{"pid": 1, "status": "runn')
    for folder in (junk, cut):
        seen = []
        follower = threading.Thread(target=lambda folder=folder: seen.extend(follow_events(folder, poll=0.01)), daemon=True)
        follower.start()
        follower.join(timeout=10)
        assert not follower.is_alive(), folder.path.name
        assert seen[-1].kind == ("run_finished" if folder is junk else "step_ended")


def test_a_state_file_with_values_of_the_wrong_type_reads_as_none_and_runs_lists_the_others(tmp_path: Path, capsys) -> None:
    from dbtui.cli import main
    from engine.runs.folder import RunState

    for name, state in (("typo", '{"pid": 1, "status": "finished", "last_loss": "x"}'),
                        ("pid", '{"pid": "abc", "status": "running"}')):
        folder = RunFolder(tmp_path / name).create()
        _write(folder, _started())
        folder.state_file.write_text(state)
        assert folder.read_state() is None and folder.status() == "crashed"  # its events: a start, no end
    good = RunFolder(tmp_path / "good").create()
    _write(good, _started())
    good.write_state(RunState(pid=1, status="finished", step=120, total_steps=120, last_loss=0.25))
    assert main(["runs", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "0.2500" in out and out.count("crashed") == 2


def test_ctrl_c_after_training_says_the_outputs_are_written_and_twice_gives_the_resume_command(tmp_path: Path, capsys) -> None:
    """During the export a Ctrl-C said "saving a checkpoint at the next step boundary", where no step was left; a
    second one quit with "dbtui: interrupted" alone, though the last steps were in no checkpoint."""
    import pytest

    from engine.events import PhaseFinished, PhaseStarted

    folder = RunFolder(tmp_path / "run").create()
    folder.profile.write_text("# written by the launch\n", encoding="utf-8")  # what a resume trains
    (folder.checkpoints / "step-00000002").mkdir(parents=True)
    (folder.checkpoints / "step-00000002" / "manifest.json").write_text('{"step": 2}')
    _write(folder, _started(), _step(3), PhaseFinished(phase="training", seconds=1.0), PhaseStarted(phase="export"))

    def display(event) -> None:
        if event.kind == "phase_started":
            _write(folder, PhaseFinished(phase="export", seconds=1.0))
            raise KeyboardInterrupt
        if event.kind == "phase_finished" and event.phase == "export":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        watch(folder, _DisplayCall(display), _Process(folder))
    err = capsys.readouterr().err
    assert "stopping: training is over; the final samples and outputs are being written" in err
    assert f"quitting at once: the trainer is told to end without saving. Resume from its latest checkpoint (step 2) with: " \
           f"dbtui resume {folder.path}" in err


def test_a_run_folder_deleted_while_training_is_said_to_be_gone(tmp_path: Path, capsys) -> None:
    """The trainer made the folder again in part (its state and traceback): it was said to have stopped unexpectedly."""
    import shutil

    folder = RunFolder(tmp_path / "run").create()
    _write(folder, _started(), _step(1))

    def delete(event) -> None:
        shutil.rmtree(folder.path)
        folder.create()  # the dying trainer writes its state file into a new folder of the same name

    watch(folder, _DisplayCall(delete), _Killed())
    assert f"the run folder {folder.path} is gone: it was moved or deleted while the run trained" in capsys.readouterr().err


def test_a_launch_that_failed_before_the_trainer_began_shows_its_log_not_a_gone_folder(tmp_path: Path, capsys) -> None:
    """accelerate launch refused a bad address: no events.jsonl was ever written, and the run folder was said to be
    moved or deleted, with torch's reason in a log nobody was pointed to."""
    folder = RunFolder(tmp_path / "run").create()
    folder.profile.write_text("# written by the launch\n", encoding="utf-8")
    folder.log.write_text("ValueError: The hostname of the rendezvous endpoint 'not an ip!:29622' must be ...\n",
                          encoding="utf-8")
    watched = watch(folder, _DisplayCall(lambda event: None), _Killed())
    err = capsys.readouterr().err
    assert watched.last is None and "is gone" not in err
    assert "the trainer ended before it began the run; end of its log:\n  ValueError: The hostname" in err


def test_a_resume_that_failed_before_its_trainer_began_is_not_said_to_be_killed(tmp_path: Path, capsys) -> None:
    """The earlier attempts' events.jsonl was taken for this attempt's: "stopped unexpectedly, without a last word
    (killed, or out of host memory?)" for an accelerate launch that refused a bad address."""
    folder = RunFolder(tmp_path / "run").create()
    folder.profile.write_text("# written by the launch\n", encoding="utf-8")
    _write(folder, _started(), _step(1))
    folder.log.write_text("ValueError: bad main_process_ip\n", encoding="utf-8")
    watched = watch(folder, _DisplayCall(lambda event: None), _Killed(), start=folder.events.stat().st_size)
    err = capsys.readouterr().err
    assert watched.last is None and "stopped unexpectedly" not in err
    assert "the trainer ended before it began the run; end of its log:\n  ValueError: bad main_process_ip" in err


def test_an_attempt_after_a_cut_off_last_line_starts_its_events_on_a_line_of_their_own(tmp_path: Path) -> None:
    """A full disk or a power loss cut the log's last line; the next attempt's first event joined it, and every reader
    dropped that event (a resumed run's run_started, so its finish was read as the earlier attempt's)."""
    from engine.runs.sinks import JsonlSink, read_events

    folder = RunFolder(tmp_path / "run").create()
    _write(folder, _started(), _step(43))
    with folder.events.open("a", encoding="utf-8") as file:
        file.write(_step(44).to_json()[:25])
    sink = JsonlSink(folder.events)
    sink(_started(resumed=43))
    sink(RunFinished(step=120, outputs={}, seconds=1.0))
    sink.close()
    kinds = [e.kind for e in read_events(folder.events)]
    assert kinds == ["run_started", "step_ended", "run_started", "run_finished"]
    assert [e.kind for e in follow_events(folder, follow=False)][-2:] == ["run_started", "run_finished"]



def test_a_second_ctrl_c_reaches_the_whole_group_of_a_trainer_in_its_own_session(tmp_path: Path) -> None:
    """Sent to accelerate's launcher alone, it reached no trainer (the single-process launcher terminates, then kills,
    its trainer; an older one left it running)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from dbtui.cli.watch import _signals_as_interrupts

    folder = RunFolder(tmp_path / "run").create()
    child = tmp_path / "child.pid"
    launcher = subprocess.Popen(  # a launcher that passes nothing on, with its trainer in its group
        [sys.executable, "-c", "import signal, subprocess, time; signal.signal(signal.SIGINT, signal.SIG_IGN); "
         "p = subprocess.Popen(['sleep', '60'], preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)); "
         f"open({str(child)!r}, 'w').write(str(p.pid)); p.wait(); time.sleep(60)"],
        start_new_session=True)
    try:
        deadline = time.time() + 30
        while not (child.exists() and child.read_text()) and time.time() < deadline:
            time.sleep(0.05)
        trainer = int(child.read_text())
        interrupts = 0
        with _signals_as_interrupts(launcher, folder, own_session=True):
            for _ in range(2):
                try:
                    os.kill(os.getpid(), signal.SIGINT)
                    time.sleep(1)
                except KeyboardInterrupt:
                    interrupts += 1
        assert interrupts == 2 and (folder.control / "stop").exists()  # the first asked in the run folder
        deadline = time.time() + 10
        while Path(f"/proc/{trainer}").exists() and Path(f"/proc/{trainer}/stat").read_text().split()[2] != "Z":
            assert time.time() < deadline, "the trainer never got the second Ctrl-C"
            time.sleep(0.05)
    finally:
        os.killpg(launcher.pid, signal.SIGKILL)
        launcher.wait()


def test_attach_says_a_live_runs_deleted_log_is_gone_rather_than_waiting_in_silence(tmp_path: Path) -> None:
    """`dbtui attach` on a trainer whose events.jsonl was deleted while it trained printed nothing, for as long as one
    waited: the trainer goes on (its trainer.log says so) and writes no event where attach reads."""
    import os
    import subprocess
    import time

    from engine.runs.folder import RunState
    from engine.runs.trainer_lock import TrainerLock
    from tests.runs_helpers import dbtui

    folder = RunFolder(tmp_path / "r").create()
    lock = TrainerLock(folder)
    lock.acquire()  # this process is the live trainer
    try:
        folder.write_state(RunState(pid=os.getpid(), status="running", step=5, total_steps=120, heartbeat=time.time(),
                                    started=time.time()))
        assert folder.is_live() and not folder.events.exists()
        attach = dbtui("attach", str(folder.path), "--plain", stderr=subprocess.PIPE, text=True)
        try:
            err = attach.communicate(timeout=60)[1]  # before: no end, nothing said
        finally:
            attach.kill()
        assert attach.returncode != 0
        assert "event log" in err and "is gone" in err and "the trainer goes on training" in err
        assert f"dbtui stop {folder.path}" in err
    finally:
        lock.release()



def test_a_trainer_whose_failure_its_disk_kept_from_the_events_is_said_to_have_failed_not_killed(tmp_path: Path,
                                                                                                  capsys) -> None:
    """A full disk refused the run's last event too: its `dbtui run` said "stopped unexpectedly, without a last word
    (killed, or out of host memory?)" above the trainer's own line saying the disk was full."""
    folder = RunFolder(tmp_path / "run").create()
    folder.profile.write_text("# written by the launch\n", encoding="utf-8")
    _write(folder, _started(), _step(1))
    folder.log.write_text("Loading weights: 100%\ndbtui trainer: the disk is full (or the quota used up) writing "
                          f"'{folder.state_file}'; free some space\n", encoding="utf-8")
    watched = watch(folder, _DisplayCall(lambda event: None), _Killed())
    err = capsys.readouterr().err
    assert watched.last is not None and "killed" not in err and "Loading weights" not in err
    assert err.startswith("the trainer failed, and could not write that into the run folder: the disk is full")


def test_a_trainer_killed_after_its_processes_met_is_not_said_to_have_failed_with_the_meeting_line(tmp_path: Path,
                                                                                                   capsys) -> None:
    """The meeting line ends with its count of processes ("… have met (2 processes)"), so it never equalled MET: a
    run of several processes killed with that line last was said to have "failed, and could not write that into the
    run folder: the processes of the run have met (2 processes)"."""
    from engine.runs.meeting import say_met

    folder = RunFolder(tmp_path / "run").create()
    folder.profile.write_text("# written by the launch\n", encoding="utf-8")
    _write(folder, _started(), _step(1))
    with folder.log.open("w", encoding="utf-8") as log, contextlib.redirect_stdout(log):
        say_met(2)
    watched = watch(folder, _DisplayCall(lambda event: None), _Killed())
    err = capsys.readouterr().err
    assert watched.last is not None and "failed" not in err
    assert err.startswith("the trainer stopped unexpectedly, without a last word (killed, or out of host memory?)")
