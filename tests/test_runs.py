"""Runs that outlive the terminal: checkpoints, signals, detach, control, watchdogs (exact resume and runs of two
processes: test_runs_resume.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from engine.errors import DbtuiError
from engine.runs.in_process import train
from engine.runs.checkpoints import complete_checkpoints
from engine.runs.control import request, take_requests
from engine.runs.folder import RunFolder, RunFolderError
from engine.runs.trainer_lock import TrainerLock
from engine.runs.supervisor import Supervisor
from engine.training.watchdogs import NonFiniteLossError, OutOfMemoryAdviceError, images_look_broken
from engine.runs.sinks import read_events
from tests.runs_helpers import ROOT, dbtui, env, profile_file, python, step_of, wait_for
from tests.shared_runs import PlainRun, own_copy, tree
from tests.training_helpers import tiny_profile

def start_worker(run_dir: Path, profile_path: Path, code: str | None = None, *args: str) -> subprocess.Popen:
    folder = RunFolder(run_dir).create()
    folder.profile.write_text(profile_path.read_text())
    if code is None:
        # As `dbtui run` starts it (engine/runs/command.py): its exit skips the interpreter's last garbage collection,
        # some 4 s of a loaded machine's time that `sys.exit(main())` paid (engine/support/process_exit.py).
        return subprocess.Popen([sys.executable, "-m", "engine.runs.worker", str(run_dir), *args], cwd=ROOT, env=env())
    return python(code, str(run_dir), *args)


def test_plain_mode_prints_progress_while_running_and_rerun_is_refused(plain_scored_run: PlainRun, tmp_path: Path,
                                                                       capsys) -> None:
    from dbtui.cli import main

    path, returncode, text, seen_running, run = plain_scored_run
    assert returncode == 0, text
    assert seen_running, text
    assert text.startswith(f"running: dbtui run {path}") and "outputs are in" in text
    # A launch writes into the run (RUN/.launching) while the other worker may copy it: this test's own copy.
    path, built = own_copy(plain_scored_run, tmp_path), tree(run)
    code = main(["run", str(path), "--plain", "--set", "training.max_train_steps=8", "--set", "name=t"])
    assert tree(run) == built
    out = "".join(capsys.readouterr())
    # The suggested command keeps the other overrides and leaves out the name it replaces.
    assert code == 2 and "finished run" in out
    assert f"`dbtui run {path} --set training.max_train_steps=8 --set name=NEW_NAME`" in " ".join(out.split())


def test_a_run_on_a_machine_without_cuda_prints_no_bitsandbytes_kernel_notice(plain_scored_run: PlainRun) -> None:
    """peft and diffusers import bitsandbytes, which logs a notice about a CPU 4-bit kernel that
    nobody running dbtui can act on; neither the terminal nor the trainer's log shows it."""
    from importlib.util import find_spec

    _, returncode, out, _, run = plain_scored_run
    assert returncode == 0, out
    folder = RunFolder(run)
    assert "gemm_4bit_forward" not in out + folder.log.read_text()
    [started] = [e for e in read_events(folder.events) if e.kind == "run_started"]
    assert started.hardware["bitsandbytes"] is (find_spec("bitsandbytes") is not None)


def test_a_checkpoint_deleted_by_hand_from_a_run_whose_rotation_deleted_nothing_is_said_gone(plain_scored_run: PlainRun) -> None:
    """keep_last_n = 2 and one checkpoint: the rotation deleted nothing, so logged nothing, and step 2's checkpoint,
    had it been deleted by hand, was said "deleted, by hand or by an older version's rotation". Read only: the events
    say so whatever checkpoints/ holds."""
    from engine.runs.keep import unkept_why

    assert plain_scored_run.returncode == 0, plain_scored_run.out
    events = RunFolder(plain_scored_run.run).events
    assert not [e for e in read_events(events) if e.kind == "checkpoints_rotated"]
    assert unkept_why(events, 2) == "gone"


def test_detached_run_survives_its_terminal_then_attach_and_stop(tmp_path: Path) -> None:
    path = profile_file(tmp_path, training={"max_train_steps": 5000}, saving={"every_n_steps": 10000})
    run_dir = tmp_path / "runs" / "t"
    # The "terminal": a shell in its own session that starts the detached run and stays around.
    terminal = subprocess.Popen(
        ["bash", "-c", f"{sys.executable} -m dbtui run {path} --detach --plain; sleep 600"],
        cwd=Path(__file__).parents[1], start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1])),
    )
    folder = RunFolder(run_dir)
    wait_for(lambda: step_of(folder) >= 1)
    os.killpg(terminal.pid, signal.SIGKILL)  # the SSH session and everything in its process group die
    terminal.wait()
    step = step_of(folder)
    wait_for(lambda: step_of(folder) >= step + 2)
    assert folder.is_live()

    attach = dbtui("attach", str(run_dir), "--plain", stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    first = attach.stdout.readline()
    assert first.startswith("[load_model]")
    stop = dbtui("stop", str(run_dir), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert stop.wait(timeout=60) == 0
    out = first + attach.stdout.read()  # attach ends by itself when the run does
    assert attach.wait(timeout=60) == 0
    assert "step 1/5000" in out and "stopped at step" in out and "checkpoint at step" in out
    assert folder.read_state().status == "stopped"
    assert complete_checkpoints(folder)


def test_nan_loss_stops_with_advice_and_keeps_the_last_good_checkpoint(tmp_path: Path) -> None:
    profile = tiny_profile(tmp_path, training={"max_train_steps": 10}, saving={"every_n_steps": 2})
    folder = RunFolder(tmp_path / "run").create()
    supervisor = Supervisor(folder)

    def poison(trainer) -> None:
        supervisor.attach(trainer)
        original = trainer.loss
        trainer.loss = lambda batch: original(batch) * (float("nan") if trainer.global_step >= 3 else 1.0)

    with pytest.raises(NonFiniteLossError):
        train(profile, folder.path, step_hooks=[supervisor.on_step], trainer_hook=poison)
    [failed] = [e for e in read_events(folder.events) if e.kind == "run_failed"]
    assert "nan" in failed.reason.lower() and "bf16" in failed.advice
    assert [step for step, _ in complete_checkpoints(folder)] == [2]


def test_out_of_memory_gives_advice_from_the_settings(tmp_path: Path) -> None:
    profile = tiny_profile(tmp_path, training={"max_train_steps": 3})

    def oom(trainer, step) -> None:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    with pytest.raises(OutOfMemoryAdviceError) as caught:
        train(profile, tmp_path / "run", step_hooks=[oom])
    assert "gradient checkpointing" in caught.value.advice and "LoRA" in caught.value.advice
    [failed] = [e for e in read_events(tmp_path / "run" / "events.jsonl") if e.kind == "run_failed"]
    assert failed.advice == caught.value.advice


def test_out_of_memory_on_a_gpu_without_bf16_offers_no_bf16_only_setting(tmp_path: Path) -> None:
    """A full run out of memory on a T4 (here: the CPU, which has no bf16 either) was advised to keep the weights in bf16,
    which its card cannot run."""
    profile = tiny_profile(tmp_path, training={"max_train_steps": 3})

    def oom(trainer, step) -> None:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    with pytest.raises(OutOfMemoryAdviceError) as caught:
        train(profile, tmp_path / "run", step_hooks=[oom])
    assert "bf16_weights" not in caught.value.advice
    assert "optimizer.fused_backward = true" in caught.value.advice  # refused under fp16 only: this run is fp32


def _catches(pid: int, signum: int) -> bool:
    """Whether process ``pid`` has a handler of its own for ``signum`` (the worker sets SIGINT's and SIGTERM's
    together; Python sets SIGINT's as it starts)."""
    caught = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("SigCgt:"))
    return bool(int(caught.split()[1], 16) & 1 << (signum - 1))


def test_a_ctrl_c_while_the_trainer_still_imports_stops_it_in_set_up_not_as_a_crash(tmp_path: Path) -> None:
    """It printed a KeyboardInterrupt traceback and left the run "starting", then listed as crashed."""
    from engine.profile import save_profile

    folder = RunFolder(tmp_path / "run").create()
    save_profile(tiny_profile(tmp_path), folder.profile)
    worker = subprocess.Popen([sys.executable, "-m", "engine.runs.worker", str(folder.path)], cwd=Path(__file__).parents[1],
                              env=dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1])), stderr=subprocess.PIPE, text=True)
    # Its handlers set, within its imports (seconds of torch and diffusers): a fixed 0.5 s came before them on a
    # loaded machine, and Python's own KeyboardInterrupt ended the interpreter still starting.
    wait_for(lambda: _catches(worker.pid, signal.SIGTERM), timeout=60, poll=0.01)
    worker.send_signal(signal.SIGINT)
    _, err = worker.communicate(timeout=300)
    assert worker.returncode == 0 and "Traceback" not in err, err
    assert folder.read_state().status == "stopped"


def test_control_requests_are_files_taken_once(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path).create()
    request(folder, "save")
    request(folder, "stop")
    assert take_requests(folder) == {"save", "stop"}
    assert take_requests(folder) == set()
    (folder.control / f".stop.{os.getpid()}.tmp").mkdir()  # the request cannot be written (as for another user)
    with pytest.raises(DbtuiError, match=f"cannot leave the stop request in {folder.control}.*as the user who started"):
        request(folder, "stop")


def test_requests_left_by_a_killed_trainer_are_dropped_and_a_stop_acts_before_the_first_step(tmp_path: Path) -> None:
    """A stop asked during class images waited for the first step; after a kill it stopped the next trainer unasked,
    also when NFS dated it in the future (a skewed clock)."""
    import time

    from engine.runs.control import drop_requests

    folder = RunFolder(tmp_path).create()
    request(folder, "sample")
    request(folder, "stop")
    later = time.time() + 30
    os.utime(folder.control / "stop", (later, later))
    drop_requests(folder)
    assert take_requests(folder) == set()

    supervisor = Supervisor(folder)
    supervisor.watch_setup_requests(every=0.02)
    request(folder, "stop")
    assert supervisor.cancel.wait(timeout=10) and supervisor.stop_requested
    assert not (folder.control / "stop").exists()


def test_one_trainer_per_folder_and_a_stale_lock_is_taken_over(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path).create()
    trainer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "engine.runs.worker", str(tmp_path)])
    folder.lock.write_text(str(trainer.pid))
    with pytest.raises(RunFolderError, match="already running"):
        TrainerLock(folder).acquire()
    trainer.kill()
    trainer.wait()
    other = subprocess.Popen(["sleep", "30"])  # a crashed trainer's pid, taken by another process after a restart
    wait_for(lambda: Path(f"/proc/{other.pid}/cmdline").read_bytes(), timeout=10)  # its command is empty until exec ends
    folder.lock.write_text(str(other.pid))
    lock = TrainerLock(folder)
    lock.acquire()
    lock.release()
    other.kill()
    other.wait()
    folder.lock.write_text(str(trainer.pid))
    lock = TrainerLock(folder)
    lock.acquire()  # its owner is gone: a crash left it
    assert folder.lock.read_text() == str(os.getpid())
    lock.release()
    assert not folder.lock.exists()


def test_a_lock_read_between_its_creation_and_its_pid_is_not_taken_over(tmp_path: Path) -> None:
    """Read empty in that moment, it counted as a crash's: the second trainer removed it and took its own, and both ran."""
    import threading

    folder = RunFolder(tmp_path).create()
    trainer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "engine.runs.worker", str(tmp_path)])
    folder.lock.write_text("")  # just created by the other trainer, which writes its pid next
    writer = threading.Timer(0.2, lambda: folder.lock.write_text(str(trainer.pid)))
    writer.start()
    try:
        with pytest.raises(RunFolderError, match=f"a trainer \\(pid {trainer.pid}\\) is already running"):
            TrainerLock(folder).acquire()
    finally:
        writer.join()
        trainer.kill()
        trainer.wait()


def test_black_samples_are_recognised() -> None:
    from PIL import Image

    assert images_look_broken([Image.new("RGB", (8, 8))])
    assert not images_look_broken([Image.new("RGB", (8, 8), (10, 200, 30))])


def test_too_little_disk_skips_the_checkpoint_with_a_warning_and_training_goes_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil as shutil_module
    from collections import namedtuple

    import engine.runs.checkpoints as checkpoints

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(checkpoints.shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 1024, 1024))
    assert checkpoints.shutil is shutil_module
    profile = tiny_profile(tmp_path, training={"max_train_steps": 4}, saving={"every_n_steps": 2})
    folder = RunFolder(tmp_path / "run").create()
    supervisor = Supervisor(folder)
    result = train(profile, folder.path, step_hooks=[supervisor.on_step], trainer_hook=supervisor.attach)
    assert result.status == "finished" and result.step == 4
    warnings = [e for e in read_events(folder.events) if e.kind == "warning"]
    assert warnings and "not enough disk" in warnings[0].message
    assert complete_checkpoints(folder) == []


def test_a_small_checkpoint_is_saved_on_a_disk_with_room_for_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check asked for the checkpoint's size and a fifth, plus 50 MiB: a 19 MB checkpoint was skipped with 40 MB free."""
    from collections import namedtuple

    import engine.runs.checkpoints as checkpoints

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(checkpoints.shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 40 * 10**6, 40 * 10**6))
    folder = RunFolder(tmp_path / "run").create()
    supervisor = Supervisor(folder)
    train(tiny_profile(tmp_path, training={"max_train_steps": 3}, saving={"every_n_steps": 2}), folder.path,
          step_hooks=[supervisor.on_step], trainer_hook=supervisor.attach)
    [(step, saved)] = complete_checkpoints(folder)
    assert step == 2 and sum(file.stat().st_size for file in saved.rglob("*") if file.is_file()) < 25 * 10**6
    assert not [e for e in read_events(folder.events) if e.kind == "warning" and "not enough disk" in e.message]


@pytest.mark.parametrize("optimizer", ["prodigy", "lion", "adamw"])
def test_the_first_checkpoints_size_is_estimated_with_its_optimizers_state(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, optimizer: str) -> None:
    """The space check's estimate before any checkpoint counted two fp32 moments whatever the optimizer: Prodigy's
    four states made a checkpoint 1.7 times the estimate, past its fifth of margin, so a disk with room for the
    estimate passed the check and filled during the save, ending the run; Lion's one made it 0.7 times, skipping
    checkpoints that fitted."""
    import engine.runs.checkpoints as checkpoints

    estimates: list[int] = []
    estimate = checkpoints._estimate_bytes
    monkeypatch.setattr(checkpoints, "_estimate_bytes", lambda *given: estimates.append(estimate(*given)) or estimates[-1])
    folder = RunFolder(tmp_path / "run").create()
    supervisor = Supervisor(folder)
    train(tiny_profile(tmp_path, training={"max_train_steps": 3}, saving={"every_n_steps": 2},
                       optimizer={"name": optimizer}), folder.path,
          step_hooks=[supervisor.on_step], trainer_hook=supervisor.attach)
    [(_, saved)] = complete_checkpoints(folder)
    size = sum(file.stat().st_size for file in saved.rglob("*") if file.is_file())
    assert size * 0.9 <= estimates[0] <= size * 1.1, (size, estimates[0])

    # bf16 weights (a CUDA run's) step through fp32 copies, so their state is fp32: 2 + 8 bytes a weight, not 2 + 4.
    from types import SimpleNamespace

    from engine.runs.checkpoint_write import unsaved_checkpoint_bytes

    settings = SimpleNamespace(name="adamw", beta1=0.9)
    weight = torch.zeros(1000, dtype=torch.bfloat16)
    assert unsaved_checkpoint_bytes([weight], settings, stepped_in_fp32=True) == 2000 + 8000 + 4


def test_tensorboard_logger_writes_event_files(tmp_path: Path) -> None:
    profile = tiny_profile(tmp_path, training={"max_train_steps": 2}, logging={"logger": "tensorboard"})
    train(profile)
    assert list((tmp_path / "runs" / "t" / "logs").rglob("events.out.tfevents*"))


def test_a_second_ctrl_c_records_the_run_as_stopped_before_it_exits(tmp_path: Path, monkeypatch) -> None:
    import signal

    from engine.runs import supervisor as supervisor_module

    folder = RunFolder(tmp_path / "run").create()
    supervisor = Supervisor(folder)
    supervisor.trainer = type("T", (), {"global_step": 64, "total_steps": 200})()
    exits: list[int] = []
    monkeypatch.setattr(supervisor_module.os, "_exit", exits.append)
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP)
    try:
        supervisor.install_signals()
        # The terminal or SSH closing never stops training, in the foreground too.
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
        handler = signal.getsignal(signal.SIGINT)
        handler(signal.SIGINT, None)
        assert exits == [] and supervisor.stop_requested
        handler(signal.SIGINT, None)
    finally:
        signal.signal(signal.SIGINT, before[0])
        signal.signal(signal.SIGTERM, before[1])
        signal.signal(signal.SIGHUP, before[2])
    assert exits == [130]
    state = folder.read_state()
    assert (state.status, state.step, state.total_steps) == ("stopped", 64, 200)
