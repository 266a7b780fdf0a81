"""A stop reaches every process of a run, and accelerate's launcher never cuts one short."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

from engine.runs.control import request
from engine.runs.folder import RunFolder
from engine.runs.sinks import read_events
from engine.runs.supervisor import Supervisor
from engine.runs.worker import main as worker_main
from tests.runs_helpers import CtrlCInSetUp, launch_two_processes, profile_file
from tests.shared_runs import TwoProcessRun
from tests.training_helpers import tiny_profile

# Runs the worker with the stop heard by the main process alone, once setup is done: as `dbtui stop` or a
# SIGTERM during the caching pass, which only the main process watches for.
WORKER_STOPPED_ON_THE_MAIN_PROCESS_IN_SETUP = """
import json, os, sys
from pathlib import Path
from engine.training.trainer import Trainer
from engine.runs.worker import main
original = Trainer.setup
def setup(self):
    original(self)
    if self.accelerator.is_main_process:
        self.cancel.set()
Trainer.setup = setup
status = main([sys.argv[1]])
threads = [Path(f"/proc/self/task/{task}/comm").read_text().strip() for task in os.listdir("/proc/self/task")]
Path(sys.argv[1], f"threads-{os.environ['RANK']}.json").write_text(json.dumps(threads))
sys.exit(status)
"""


def test_a_stop_the_main_process_alone_heard_in_setup_ends_every_process(tmp_path: Path) -> None:
    """The other processes went on into the first step's gradient exchange, which the stopped main process never
    joined: they died there (gloo) or waited for ever (NCCL) while the run read as stopped."""
    script = tmp_path / "stopped.py"
    script.write_text(WORKER_STOPPED_ON_THE_MAIN_PROCESS_IN_SETUP)
    folder = RunFolder(tmp_path / "run").create()
    folder.profile.write_text(profile_file(tmp_path, training={"max_train_steps": 4}).read_text())
    process = launch_two_processes(script, str(folder.path))
    assert process.returncode == 0, process.stderr[-3000:]
    events = list(read_events(folder.events))
    assert not [e for e in events if e.kind == "step_ended"]
    assert events[-1].kind == "run_finished" and events[-1].status == "stopped"
    assert folder.read_state().status == "stopped"
    for rank in (0, 1):  # both ended as after a finished run: the group is torn down
        threads = json.loads((folder.path / f"threads-{rank}.json").read_text())
        assert threads and not [name for name in threads if "gloo" in name], threads

def test_the_main_process_disk_decides_for_every_process_whether_a_checkpoint_is_saved(two_process_run: TwoProcessRun) -> None:
    """Each process decided alone: one skipped the save while the other went into its collectives. The shared run's
    second process has a disk too small for a checkpoint (tests/shared_runs.py)."""
    from engine.runs.checkpoints import complete_checkpoints

    assert two_process_run.returncode == 0, two_process_run.log
    assert Path(two_process_run.command[-2]).name == "small_disk.py"  # the trainers ran with the small disk
    folder = RunFolder(two_process_run.run)
    assert [step for step, _ in complete_checkpoints(folder)] == [2]
    assert not [e for e in read_events(folder.events) if e.kind == "warning" and "disk" in e.message]


def test_accelerate_runs_get_a_session_of_their_own_in_the_foreground_too(tmp_path: Path, monkeypatch) -> None:
    """accelerate's launcher passes a SIGHUP, SIGINT or SIGTERM on to its trainers and kills them 30 s later: a closed
    SSH connection stopped a foreground run, and a Ctrl-C could cut its last checkpoint short."""
    from engine.runs import launcher

    monkeypatch.setattr(launcher, "worker_command", lambda *args: [sys.executable, "-c", "import time; time.sleep(60)"])
    sessions: list[bool] = []
    spawn = subprocess.Popen

    def recorded(*args, **kwargs):
        sessions.append(kwargs["start_new_session"])
        return spawn(*args, **kwargs)

    monkeypatch.setattr(launcher.subprocess, "Popen", recorded)
    alone = tiny_profile(tmp_path, name="alone")
    several = tiny_profile(tmp_path, name="several", launch={"num_processes": 2})
    started = [launcher.start_run(alone), launcher.start_run(several), launcher.start_run(alone.model_copy(update={"name": "bg"}), detach=True)]
    for run in started:
        run.process.kill()
        run.process.wait()
    # Alone in the foreground, the trainer hears the terminal's Ctrl-C itself (and ignores its SIGHUP).
    assert sessions == [False, True, True]
    assert [run.own_session for run in started] == [False, True, True]


def test_a_stop_taken_from_the_run_folder_makes_the_next_sigint_end_the_process_at_once(tmp_path: Path, monkeypatch) -> None:
    """A second Ctrl-C reaches a run in its own session as accelerate passes it on: the first came through the run
    folder, so this one must quit at once, not ask again for the stop already under way."""
    from engine.runs import supervisor as supervisor_module

    folder = RunFolder(tmp_path / "run").create()
    supervisor = Supervisor(folder)
    saved: list[tuple[int, str]] = []
    supervisor.checkpointer = SimpleNamespace(save=lambda step, reason: saved.append((step, reason)),
                                            rotate_after_good_step=lambda: None)
    trainer = SimpleNamespace(
        last_loss=0.5, total_steps=10, global_step=3, cancel=threading.Event(),
        accelerator=SimpleNamespace(is_main_process=True, num_processes=1),
        profile=SimpleNamespace(saving=SimpleNamespace(every_n_steps=0)),
    )
    supervisor.trainer = trainer
    exits: list[int] = []
    monkeypatch.setattr(supervisor_module.os, "_exit", exits.append)
    request(folder, "stop")
    supervisor.on_step(trainer, 3)
    assert saved == [(3, "stop")] and trainer.cancel.is_set()
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP)
    try:
        supervisor.install_signals()
        signal.getsignal(signal.SIGINT)(signal.SIGINT, None)
    finally:
        for signum, handler in zip((signal.SIGINT, signal.SIGTERM, signal.SIGHUP), before):
            signal.signal(signum, handler)
    assert exits == [130]
    assert folder.read_state().status == "stopped"


def test_a_ctrl_c_in_setup_says_nothing_needs_saving_and_once_set_up_that_a_checkpoint_comes(tmp_path: Path, capsys) -> None:
    """A Ctrl-C while the model loaded said "saving a checkpoint at the next step boundary": none is saved then."""
    from dbtui.cli.watch import watch
    from engine.events import PhaseStarted, RunFinished, RunStarted, StepEnded
    from engine.runs.sinks import JsonlSink

    trainer = subprocess.Popen([sys.executable, "-c", ""])
    trainer.wait()
    said = []
    started = RunStarted(run_dir="r", profile={}, hardware={}, versions={}, total_steps=9)
    step = StepEnded(step=1, total_steps=9, epoch=0, loss=0.1, smoothed_loss=0.1, lr=1e-4, it_per_s=1.0, eta_s=8.0)
    for before in ([], [started], [started, step]):
        folder = RunFolder(tmp_path / f"run{len(before)}").create()
        sink = JsonlSink(folder.events)
        for event in [*before, PhaseStarted(phase="load_model"), RunFinished(step=0, outputs={}, seconds=1.0, status="stopped")]:
            sink(event)
        sink.close()

        watch(folder, CtrlCInSetUp(), trainer)
        said.append(capsys.readouterr().err)
    assert "stopping: before the first step nothing needs saving" in said[0] and "checkpoint" not in said[0]
    # Set up but no step trained yet (the base round, say): the trainer ends before its first step, saving nothing.
    assert "stopping: before the first step nothing needs saving; the run ends before it" in said[1]
    assert "checkpoint" not in said[1]
    assert "stopping: saving a checkpoint at the next step boundary" in said[2]


def test_a_stop_asked_the_moment_the_run_starts_stops_it_and_one_asked_before_does_not(tmp_path: Path, monkeypatch) -> None:
    """The trainer dropped, as left by a killed trainer, every request older than its own imports: the wizard's Stop,
    sent as soon as start_run returned, was among them and the run trained on."""
    from engine.runs import launcher
    from tests.runs_helpers import TrainerHere

    profile = tiny_profile(tmp_path, training={"max_train_steps": 200})
    folder = RunFolder(tmp_path / "runs" / "t").create()
    request(folder, "save")  # asked of an earlier trainer: not this one's
    trainer = TrainerHere(monkeypatch)  # started once the stop is asked, as a trainer still importing is
    started = launcher.start_run(profile)
    assert not (folder.control / "save").exists()
    request(started.folder, "stop")
    assert trainer.train() == 0
    state = started.folder.read_state()
    assert state.status == "stopped" and state.step < 200


def test_a_stop_asked_as_setup_ends_stops_before_the_first_step_without_a_checkpoint(tmp_path: Path,
                                                                                      monkeypatch) -> None:
    """The watcher quit as training began and the stop file it had not seen yet was taken at step 1: the run trained a
    step and saved a checkpoint, though `dbtui run` had said that before the first step nothing needs saving. Once
    that was fixed, a run with [evaluation] still scored its base round (minutes of images on SDXL/Flux) first."""
    from engine.training.trainer import Trainer
    from tests.test_evaluation import TINY_SCORERS

    folder = RunFolder(tmp_path / "run").create()
    evaluation = {"enabled": True, "prompts": ["a zwx disc"], **TINY_SCORERS}
    folder.profile.write_text(profile_file(tmp_path, training={"max_train_steps": 4}, evaluation=evaluation).read_text())
    setup = Trainer.setup

    def stopped_as_it_ends(self: Trainer) -> None:  # the last moment of caching_text, inside the watcher's second
        setup(self)
        request(folder, "stop")

    monkeypatch.setattr(Trainer, "setup", stopped_as_it_ends)
    assert worker_main([str(folder.path)]) == 0
    events = list(read_events(folder.events))
    assert not [e for e in events if e.kind in ("step_ended", "samples_scored")]
    assert events[-1].kind == "run_finished" and events[-1].status == "stopped"
    assert not list(folder.checkpoints.glob("step-*")) and not (folder.control / "stop").exists()
    state = folder.read_state()
    assert state.status == "stopped" and state.step == 0


def test_a_ctrl_c_as_the_run_starts_stops_before_the_first_step_without_a_checkpoint(tmp_path: Path, monkeypatch,
                                                                                     capsys) -> None:
    """A Ctrl-C between set-up's end and the first step trained that step and saved a checkpoint, as a stop asked
    through the run folder in that moment no longer does, though `dbtui run` had said that nothing needs saving."""
    import os

    folder = RunFolder(tmp_path / "run").create()
    folder.profile.write_text(profile_file(tmp_path, training={"max_train_steps": 4}).read_text())
    attach = Supervisor.attach

    def interrupted_once_attached(self: Supervisor, trainer: object) -> None:
        attach(self, trainer)
        os.kill(os.getpid(), signal.SIGINT)  # to this process, whose handler the trainer's entry point set

    monkeypatch.setattr(Supervisor, "attach", interrupted_once_attached)
    assert worker_main([str(folder.path)]) == 0
    events = list(read_events(folder.events))
    assert not [e for e in events if e.kind == "step_ended"]
    assert events[-1].kind == "run_finished" and events[-1].status == "stopped"
    assert not list(folder.checkpoints.glob("step-*"))
    assert folder.read_state().status == "stopped" and folder.read_state().step == 0
    assert "stopped at step 0" in capsys.readouterr().out


def test_dbtui_stop_before_the_first_step_says_nothing_is_saved_as_none_is(tmp_path: Path, monkeypatch,
                                                                           capsys) -> None:
    """Between set-up's end and the first step the state said "running", so `dbtui stop` (and the wizard's Stop) said a
    checkpoint comes at the next step boundary, though the run ends before that step with nothing saved."""
    from dbtui.cli import main as dbtui

    folder = RunFolder(tmp_path / "run").create()
    folder.profile.write_text(profile_file(tmp_path, training={"max_train_steps": 4}).read_text())
    attach = Supervisor.attach
    asked: list[int] = []

    def stopped_once_attached(self: Supervisor, trainer: object) -> None:  # the base round's moment
        attach(self, trainer)
        asked.append(dbtui(["stop", str(folder.path)]))

    monkeypatch.setattr(Supervisor, "attach", stopped_once_attached)
    assert worker_main([str(folder.path)]) == 0
    stdout = capsys.readouterr().out
    assert asked == [0] and "stops before the first step, with nothing to save" in stdout, stdout
    assert folder.read_state().status == "stopped"


def test_a_sigterm_before_the_first_step_ends_a_trainer_that_never_reads_its_run_folder(tmp_path: Path,
                                                                                        monkeypatch) -> None:
    """`timeout 120 dbtui run` on machine 0 of two, the other never coming: the SIGTERM was asked of the trainer
    through the run folder, which accelerate's launcher, waiting in torch elastic's rendezvous, never reads; neither
    ended for 11 minutes, until the launcher was killed by pid."""
    import os
    import time

    from dbtui.cli import watch as watch_module
    from engine.runs import launcher

    monkeypatch.setattr(watch_module, "UNHEARD_STOP_S", 0.5)
    monkeypatch.setattr(launcher, "worker_command", lambda *args: [sys.executable, "-c", "import time; time.sleep(600)"])
    run = launcher.start_run(tiny_profile(tmp_path, launch={"num_processes": 2}))
    assert run.own_session
    # The stand-in takes no trainer lock: it is live while it runs, as the launcher is to a run folder.
    monkeypatch.setattr(RunFolder, "is_live", lambda self: run.process.poll() is None)

    def terminate_once_watched() -> None:
        while getattr(signal.getsignal(signal.SIGTERM), "__name__", "") != "on_terminate":  # watch() took it
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(20)
        run.process.kill()  # without the fix: the watch ends here, 20 s on, and the test fails rather than hangs

    threading.Thread(target=terminate_once_watched, daemon=True).start()
    began = time.monotonic()
    watched = watch_module.watch(run.folder, CtrlCInSetUp(), run.process, own_session=True)
    assert watched.interrupted and time.monotonic() - began < 15
    assert run.process.returncode == -signal.SIGTERM
    # Stopped with nothing to save, as a trainer that took the stop leaves it; its stop is no later run's.
    assert run.folder.read_state().status == "stopped"
    assert not (run.folder.control / "stop").exists()


def test_a_ctrl_c_while_caching_ends_the_run_there_without_loading_the_text_encoders(tmp_path: Path,
                                                                                     monkeypatch) -> None:
    """A Ctrl-C in the caching pass cut the pass short and said it was done, then went on to load the text encoders
    (Flux's T5 is 9.5 GB) and encode every caption before stopping at the first step, though `dbtui run` had said
    the run ends as soon as its set-up lets it."""
    import os

    from engine.data.encoders import LatentSource

    folder = RunFolder(tmp_path / "run").create()
    folder.profile.write_text(profile_file(tmp_path, training={"max_train_steps": 4}).read_text())
    fill = LatentSource.fill

    def interrupted_at_the_first_image(self: LatentSource, emit, should_stop=lambda: False) -> None:
        def emit_then_interrupt(event) -> None:
            emit(event)
            if event.kind == "phase_progress" and event.done == 1:
                # To this process, whose handler the trainer's entry point set. Once: a second Ctrl-C exits the
                # process at once (os._exit), which here would be pytest's.
                os.kill(os.getpid(), signal.SIGINT)

        fill(self, emit_then_interrupt, should_stop)

    monkeypatch.setattr(LatentSource, "fill", interrupted_at_the_first_image)
    assert worker_main([str(folder.path)]) == 0
    events = list(read_events(folder.events))
    caching = [e for e in events if e.kind == "phase_finished" and e.phase == "caching"]
    assert caching and caching[0].stopped
    assert not [e for e in events if e.kind == "phase_started" and e.phase in ("load_text_encoders", "caching_text", "training")]
    assert events[-1].kind == "run_finished" and events[-1].status == "stopped"
    assert folder.read_state().status == "stopped" and folder.read_state().step == 0
