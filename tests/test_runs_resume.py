"""Runs stopped and resumed bit for bit (SIGKILL, a kill during a save, SIGINT), and runs of two processes through
accelerate launch: in step, each resuming its own noise, all stopped by a NaN or a lost process on one. Split from
test_runs.py, whose other tests run beside these on another worker."""

from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path
from typing import NamedTuple

import pytest
import torch
from safetensors.torch import load_file

from engine.profile import load_profile
from engine.runs.checkpoints import MANIFEST, complete_checkpoints, latest_checkpoint, read_manifest
from engine.runs.folder import RunFolder
from engine.runs.sinks import read_events
from engine.runs.worker import main as worker_main
from tests.runs_helpers import (
    KILL_AFTER_STEP,
    KILL_AT_RENAME,
    RANKS_AFTER_RESUME,
    WORKER_NAN_ON_ONE_PROCESS,
    TrainerHere,
    launch_two_processes,
    profile_file,
    step_of,
    trained_as_by_dbtui_run,
    wait_for,
)
from tests.shared_runs import TwoProcessRun
from tests.test_runs import start_worker

RESUMABLE = dict(training={"max_train_steps": 8, "seed": 11}, dataset={"resolution": 64, "hflip": True, "center_crop": False},
                 saving={"every_n_steps": 2, "keep_last_n": 3}, optimizer={"learning_rate": 1e-3})


def unet_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(run_dir / "outputs" / "diffusers" / "unet" / "diffusion_pytorch_model.safetensors")


def uninterrupted(path: Path) -> Path:
    """The reference run of the profile at ``path``, trained in this process as the trainer process trains it: what
    is tested is the killed process's resume, and a process of the reference's own added only its start (its imports)
    and its end."""
    return trained_as_by_dbtui_run(load_profile(path)).path


def steps_after_last_start(run_dir: Path) -> dict[int, tuple[float, float]]:
    """step → (loss, smoothed loss) of the steps the run's last attempt trained."""
    events = list(read_events(run_dir / "events.jsonl"))
    last_start = max(index for index, event in enumerate(events) if event.kind == "run_started")
    return {e.step: (e.loss, e.smoothed_loss) for e in events[last_start:] if e.kind == "step_ended"}


class KilledInASave(NamedTuple):
    """A run of RESUMABLE whose trainer process was killed (SIGKILL) at the rename that would have published the
    checkpoint of step 6 (steps 5 and 6 trained and lost), its profile file, and the run trained uninterrupted."""

    profile: Path
    killed: Path
    reference: Path


@pytest.fixture(scope="module")
def killed_in_a_save(tmp_path_factory: pytest.TempPathFactory, tiny_sd1: Path, demo_data: Path) -> KilledInASave:
    """One killed trainer process for the two tests of a SIGKILL: each resumes its own copy (``resumable_copy``) of
    the killed run. A trainer process costs its imports, some 10 s of CPU, before its first step."""
    tmp = tmp_path_factory.mktemp("killed")
    path = profile_file(tmp, **RESUMABLE)
    killed = tmp / "killed"
    process = start_worker(killed, path, KILL_AT_RENAME, "6")
    reference = uninterrupted(path)  # while the killed process trains
    assert process.wait(timeout=600) == -signal.SIGKILL
    return KilledInASave(path, killed, reference)


def resumable_copy(made: KilledInASave, tmp_path: Path) -> RunFolder:
    """This test's own copy of the killed run, which its resume writes into."""
    return RunFolder(shutil.copytree(made.killed, tmp_path / "killed"))


def test_sigkill_and_resume_ends_bitwise_equal_to_an_uninterrupted_run(killed_in_a_save: KilledInASave, tmp_path: Path,
                                                                       tiny_sd1: Path) -> None:
    reference = killed_in_a_save.reference
    folder = resumable_copy(killed_in_a_save, tmp_path)
    killed = folder.path
    assert latest_checkpoint(folder).name == "step-00000004"
    # The resume in this process, through the trainer process's own entry point: what comes back from the checkpoint
    # alone is tested (the SIGKILL ended the process that held the rest), and a process of its own cost its imports.
    assert worker_main([str(killed), "--resume", "latest"]) == 0

    started = [e for e in read_events(folder.events) if e.kind == "run_started"]
    assert started[-1].resumed_from_step == 4
    a, b = unet_weights(reference), unet_weights(killed)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    base = load_file(tiny_sd1 / "unet" / "diffusion_pytorch_model.safetensors")
    assert not all(torch.equal(a[k], base[k]) for k in a)  # training changed the weights

    # The smoothed loss goes on from the checkpoint's (the dashboard, `dbtui runs`, the console and the report showed
    # it jump to the first resumed step's raw loss): each step's (loss, smoothed loss) is the unstopped run's.
    unstopped = steps_after_last_start(reference)
    resumed = steps_after_last_start(killed)
    assert sorted(resumed) == [5, 6, 7, 8]
    assert resumed == {step: unstopped[step] for step in resumed}
    assert resumed[5][1] != resumed[5][0]  # not started over from the step's own loss
    # A checkpoint of before the smoothed loss was recorded starts it over, as every resume did then.
    older = folder.checkpoints / "step-00000006"
    manifest = json.loads((older / MANIFEST).read_text(encoding="utf-8"))
    del manifest["smoothed_loss"]
    (older / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    assert worker_main([str(killed), "--resume", str(older)]) == 0
    assert steps_after_last_start(killed)[7] == (unstopped[7][0], unstopped[7][0])


def test_a_kill_during_a_save_leaves_the_previous_checkpoint_and_resume_works(killed_in_a_save: KilledInASave,
                                                                             tmp_path: Path) -> None:
    folder = resumable_copy(killed_in_a_save, tmp_path)
    assert [step for step, _ in complete_checkpoints(folder)] == [2, 4]
    assert (folder.checkpoints / "step-00000006.partial").is_dir()  # the torn save is never taken for a checkpoint
    assert read_manifest(latest_checkpoint(folder))["step"] == 4
    (folder.checkpoints / "step-00000005.partial").mkdir()  # a torn save of a step this resume never saves
    # The resume through the trainer process's entry point, in this process: the kill is what a process of its own is
    # for, and a second one cost its imports and model load.
    assert worker_main([str(folder.path), "--resume", "latest"]) == 0
    assert [e for e in read_events(folder.events) if e.kind == "run_finished"][-1].step == 8
    assert not list(folder.checkpoints.glob("*.partial"))  # torn saves do not hold the disk for ever


def test_sigint_saves_exits_0_and_resume_continues(tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    from dbtui.cli import main

    path = profile_file(tmp_path, training={"max_train_steps": 400}, saving={"every_n_steps": 1000})
    run_dir = tmp_path / "runs" / "t"
    process = start_worker(run_dir, path)
    folder = RunFolder(run_dir)
    wait_for(lambda: step_of(folder) >= 2)
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=300) == 0
    state = folder.read_state()
    assert state.status == "stopped"
    [(step, _)] = complete_checkpoints(folder)
    assert step == state.step >= 2

    # The CLI in this process, its trainer too: the worker's SIGINT above is what a process is for, and the resume's
    # trainer process cost its imports and model load, some 10 s of CPU, where what the CLI says of the run is tested.
    trainer = TrainerHere(monkeypatch, as_started=True)
    code = main(["run", str(path), "--resume", "--plain", "--set", f"training.max_train_steps={step + 2}"])
    out = "".join(capsys.readouterr())
    assert code == 0 and trainer.statuses == [0], out
    assert f"resumed at step {step}" in out and "finished" in out
    assert folder.read_state().step == step + 2


def test_a_collective_failing_because_another_process_died_is_said_so_not_as_a_bug() -> None:
    from engine.training.watchdogs import PeerProcessLostError, peer_process_lost

    gloo = RuntimeError("[../third_party/gloo/gloo/transport/tcp/pair.cc:537] Read error [127.0.0.1]:14260: Connection reset by peer")
    lost = peer_process_lost(gloo, 2, "runs/mp", lambda: "RESUME")
    assert isinstance(lost, PeerProcessLostError) and "another process of this run ended" in str(lost)
    assert lost.advice == "see that process's log in runs/mp/logs; RESUME"

    def unasked() -> str:
        raise AssertionError("the run's checkpoints were read for an error that is no lost process")

    assert peer_process_lost(gloo, 1, "runs/mp", unasked) is None  # one process: no peer to lose
    assert peer_process_lost(RuntimeError("mat1 and mat2 shapes cannot be multiplied"), 2, "runs/mp", unasked) is None


@pytest.mark.parametrize("machines", [1, 2])
def test_a_lost_process_before_any_checkpoint_is_not_said_to_resume_from_one(tmp_path: Path, machines: int) -> None:
    """A process killed before the first checkpoint: the advice said `dbtui resume RUN` "continues from the latest
    checkpoint", of a run that had none."""
    from engine.runs.folder import RunFolder
    from engine.runs.file_errors import how_it_goes_on

    folder = RunFolder(tmp_path / "mp").create()
    said = how_it_goes_on(folder.path, 0, machines)
    assert "latest checkpoint" not in said and "again from the start" in said
    step = folder.checkpoints / "step-00000004"
    step.mkdir(parents=True)
    (step / "manifest.json").write_text('{"step": 4}')
    assert how_it_goes_on(folder.path, 0, machines) == f"then `dbtui resume {folder.path}` continues from its latest checkpoint"


def test_a_lost_process_on_machine_n_is_told_how_its_part_goes_on(tmp_path: Path) -> None:
    """Machine 1, its peer lost: it was told to start the run afresh on every machine (its own disk holds none of
    machine 0's checkpoints) or `dbtui resume RUN`, which is refused for its part; now its part's own command."""
    from engine.runs.folder import RunFolder
    from engine.runs.file_errors import how_it_goes_on

    folder = RunFolder(tmp_path / "mp").create()
    said = how_it_goes_on(folder.path, 1, 2)
    assert "--set launch.machine_rank=1" in said and "copy it here and add --resume" in said
    step = folder.checkpoints / "step-00000004"
    step.mkdir(parents=True)
    (step / "manifest.json").write_text('{"step": 4}')
    said = how_it_goes_on(folder.path, 1, 2)
    assert "dbtui resume" not in said and "--resume --set launch.machine_rank=1" in said


def test_two_process_run_through_accelerate_launch(two_process_run: TwoProcessRun) -> None:
    run = two_process_run
    assert "--num_processes" in run.command and "2" in run.command
    assert run.returncode == 0, run.log
    events = list(read_events(run.run / "events.jsonl"))
    [run_started] = [e for e in events if e.kind == "run_started"]
    assert run_started.num_processes == 2
    assert [e.step for e in events if e.kind == "step_ended"] == [1, 2, 3]  # one event stream, from the main process
    assert [e for e in events if e.kind == "checkpoint_saved"]
    assert (run.run / "outputs" / "diffusers" / "model_index.json").is_file()


def test_two_processes_stay_in_step_when_the_text_encoder_trains_and_each_resumes_its_own_noise(tmp_path: Path) -> None:
    """Under DDP every process must hold the same weights (text encoder included, here with
    clip_skip leaving its last layer out of the loss), and a resume must give each process back
    its own noise generator, not the main process's."""
    script = tmp_path / "ranks.py"
    script.write_text(RANKS_AFTER_RESUME)
    profile = profile_file(tmp_path, training={"max_train_steps": 3, "train_text_encoder": True, "clip_skip": 2})
    out = tmp_path / "ranks.json"
    process = launch_two_processes(script, str(profile), str(out))
    assert process.returncode == 0, process.stderr[-3000:]
    first, second = json.loads(out.read_text())
    assert first["unet"] == second["unet"] and first["text_encoder"] == second["text_encoder"]
    assert first["generator_at_save"] != second["generator_at_save"]  # each process draws its own noise
    for rank in (first, second):
        assert rank["generator_later"] != rank["generator_at_save"]
        assert rank["generator_restored"] == rank["generator_at_save"]
    # The process group is really gone once the trainer ends: its gloo threads, left alive into
    # interpreter exit, could abort a finished process ("terminate called without an active exception").
    for index in (0, 1):
        threads = json.loads((tmp_path / f"threads-{index}.json").read_text())
        assert threads and not [name for name in threads if "gloo" in name], threads


def test_a_nan_loss_on_one_process_stops_every_process_with_the_nan_advice(tmp_path: Path) -> None:
    """Each process only sees its own batch: a NaN on one must stop all of them with the NaN
    advice, not leave the others to die in the next gradient exchange as 'a bug in dbtui'."""
    script = tmp_path / "nan.py"
    script.write_text(WORKER_NAN_ON_ONE_PROCESS)
    folder = RunFolder(tmp_path / "run").create()
    folder.profile.write_text(profile_file(tmp_path, training={"max_train_steps": 6}).read_text())
    process = launch_two_processes(script, str(folder.path))
    assert process.returncode != 0
    [failed] = [e for e in read_events(folder.events) if e.kind == "run_failed"]
    assert "nan" in failed.reason.lower() and "bf16" in failed.advice and failed.step == 3
    assert folder.read_state().status == "failed"
    # All stopped after the same step, so the group was torn down: no gloo thread is left to
    # abort a process at interpreter exit.
    for rank in (0, 1):
        threads = json.loads((folder.path / f"threads-{rank}.json").read_text())
        assert threads and not [name for name in threads if "gloo" in name], threads


def test_a_resume_with_accumulation_prior_and_buckets_ends_bitwise_equal_to_an_uninterrupted_run(tmp_path: Path) -> None:
    """Killed between checkpoints with 2 micro-batches a step, class images interleaved and aspect buckets: the
    resume picks up the batch order, the accumulation and the class examples exactly where the checkpoint left them."""
    path = profile_file(tmp_path, **{
        **RESUMABLE,
        "training": {**RESUMABLE["training"], "gradient_accumulation_steps": 2, "train_batch_size": 2},
        "dataset": {**RESUMABLE["dataset"], "bucketing": True},
        "prior": {"enabled": True, "steps": 2},
        "concepts": [{"instance_dir": "builtin:demo-instance", "instance_prompt": "photo of zwx disc",
                      "class_dir": str(tmp_path / "class"), "class_prompt": "photo of a disc", "num_class_images": 3}],
    })
    reference = uninterrupted(path)  # first: it makes the class images the killed run then finds
    killed = tmp_path / "killed"
    assert start_worker(killed, path, KILL_AFTER_STEP, "5").wait(timeout=600) == -signal.SIGKILL
    assert latest_checkpoint(RunFolder(killed)).name == "step-00000004"
    # The resume in this process, as in the SIGKILL test above: what comes back from the checkpoint alone is tested.
    assert worker_main([str(killed), "--resume", "latest"]) == 0
    a, b = unet_weights(reference), unet_weights(killed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
