"""A final export that fails keeps the weights trained: a checkpoint of the last step, which a resume exports."""

from __future__ import annotations

import errno
import signal
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from engine.profile import save_profile
from engine.runs.checkpoints import complete_checkpoints
from engine.runs.folder import RunFolder
from engine.runs.sinks import read_events
from tests.runs_helpers import launch_two_processes
from tests.training_helpers import tiny_profile


def _worker(*args: str) -> int:
    from engine.runs.worker import main as worker

    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        return worker(list(args))
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)


def test_a_full_disk_in_the_final_export_keeps_the_last_step_for_a_resume_to_export(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The last step is never checkpointed by the interval: a run whose export met a full disk lost every step since
    its last checkpoint (here all 3: every_n_steps 5), and the advice said a resume trains it again from the start."""
    from engine.training import outputs

    save_pipeline = outputs.save_pipeline

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    folder = RunFolder(tmp_path / "run").create()
    save_profile(tiny_profile(tmp_path, training={"max_train_steps": 3}, saving={"export": ["diffusers"], "every_n_steps": 5}),
                 folder.profile)
    monkeypatch.setattr(outputs, "save_pipeline", full)
    assert _worker(str(folder.path)) == 1
    said = capsys.readouterr().err
    assert [step for step, _ in complete_checkpoints(folder)] == [3]
    kept = folder.checkpoints / "step-00000003"
    assert f"the disk is full (or the quota used up) writing '{folder.path / 'outputs'}'" in said, said
    assert (f"then `dbtui resume {folder.path}` exports the weights trained, kept in the checkpoint of step 3 ({kept}), "
            "without training again") in said, said
    trained = load_file(kept / "unet" / "diffusion_pytorch_model.safetensors")

    monkeypatch.setattr(outputs, "save_pipeline", save_pipeline)  # space freed
    assert _worker(str(folder.path), "--resume", "latest") == 0
    events = list(read_events(folder.events))
    last_start = max(index for index, event in enumerate(events) if event.kind == "run_started")
    assert len([event for event in events[:last_start] if event.kind == "step_ended"]) == 3
    assert not [event for event in events[last_start:] if event.kind == "step_ended"]  # not trained again
    # It said "steps 4-3 of 3"
    assert [event.description for event in events[last_start:] if event.kind == "phase_started" and event.phase == "training"] \
        == ["no steps left to train: exporting"]
    assert [event.status for event in events if event.kind == "run_finished"] == ["finished"]
    exported = load_file(folder.outputs / "diffusers" / "unet" / "diffusion_pytorch_model.safetensors")
    assert all(torch.equal(exported[name], trained[name]) for name in trained)


def test_the_export_writers_refusals_say_the_last_step_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The export's writers say a full disk or a folder not writable as a conversion's refusal: a run whose outputs/
    was read-only (or whose disk filled) failed with 'choose an output location you can write to', which no run can
    (its outputs are RUN/outputs), and no word of the checkpoint of its last step that keeps the weights trained."""
    from engine.convert import _files
    from engine.runs.file_errors import kept_for_export

    run, outputs = tmp_path / "run", tmp_path / "run" / "outputs"
    kept = run / "checkpoints" / "step-00000040"
    then = f"then `dbtui resume {run}` exports the weights trained, kept in the checkpoint of step 40 ({kept}), without training again"
    outputs.mkdir(parents=True)
    monkeypatch.setattr(_files.os, "access", lambda *args, **kwargs: False)  # as chmod or chattr +i would (root passes chmod)
    with pytest.raises(_files.ConvertError) as refused:
        _files.check_new_folder(outputs / "lora")
    said = kept_for_export(refused.value, run, 40, kept)
    assert said is not None and str(said) == f"permission denied on '{outputs}'"
    assert said.advice == f"make {run} and what it holds writable by this user (`ls -l`, `chmod u+w`); {then}"
    said = kept_for_export(_files._write_error(outputs / "lora", OSError(errno.ENOSPC, "No space left on device")), run, 40, kept)
    assert said is not None and str(said) == f"the disk is full (or the quota used up) writing '{outputs}'"
    assert said.advice == f"free some space (`df -h {outputs}`); {then}"
    said = kept_for_export(refused.value, run, 40, kept, machines=2)  # machine 0's resume waits for the others'
    assert said is not None and said.advice.endswith(
        f"{then}, with every other machine N resuming its part (`dbtui run PROFILE --resume --set launch.machine_rank=N`; "
        "on a disk of its own, with machine 0's checkpoints/step-00000040 copied into its checkpoints/ first)")


def test_a_read_only_file_system_under_outputs_is_said_so_with_the_checkpoint_kept(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """RUN/outputs on a file system mounted read-only was said 'permission denied … `chmod u+w`' (a chmod fails there),
    and one remounted read-only as the export wrote failed with 'choose another output location' alone, no word of the
    checkpoint of the last step that keeps the weights trained."""
    from types import SimpleNamespace

    from engine.convert import _files
    from engine.runs.file_errors import kept_for_export

    run, outputs = tmp_path / "run", tmp_path / "run" / "outputs"
    kept = run / "checkpoints" / "step-00000040"
    then = f"then `dbtui resume {run}` exports the weights trained, kept in the checkpoint of step 40 ({kept}), without training again"
    outputs.mkdir(parents=True)
    monkeypatch.setattr(_files.os, "access", lambda *args, **kwargs: False)
    monkeypatch.setattr(_files.os, "statvfs", lambda path: SimpleNamespace(f_flag=_files.os.ST_RDONLY))
    with pytest.raises(_files.ConvertError) as refused:
        _files.check_new_folder(outputs / "lora")
    partial = OSError(errno.EROFS, "Read-only file system", str(outputs / ".lora.partial"))
    for error in (refused.value, _files._write_error(outputs / "lora", partial)):
        said = kept_for_export(error, run, 40, kept)
        assert said is not None and str(said) == f"the file system holding '{outputs}' is read-only", error
        assert said.advice == f"remount it writable; {then}"


def test_training_on_from_that_checkpoint_is_warned_of(tmp_path: Path) -> None:
    """Saved after the optimizer's state was freed for the export: a resume that trains on (a raised max_train_steps)
    starts the optimizer afresh, which it did without a word."""
    from engine.runs.resume_changes import resume_warnings

    profile = tiny_profile(tmp_path, training={"max_train_steps": 10})
    said = [warning.message for warning in resume_warnings({"step": 3, "reason": "export"}, profile, 1, 10)]
    assert said == ["the checkpoint of step 3 holds no optimizer state (it was saved as the run's final export failed): "
                    "the steps after it start the optimizer's moments afresh, and the resume is not exact"]
    assert resume_warnings({"step": 3, "reason": "export"}, profile, 1, 3) == []


def test_a_bug_in_the_final_export_says_the_last_step_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An error that is no file's (a bug) saved the checkpoint of the last step too, and its report said nothing of it."""
    from engine.training import outputs

    def bug(*args: object, **kwargs: object) -> None:
        raise RuntimeError("an unforeseen error")

    folder = RunFolder(tmp_path / "run").create()
    save_profile(tiny_profile(tmp_path, training={"max_train_steps": 3}, saving={"export": ["diffusers"], "every_n_steps": 5}),
                 folder.profile)
    monkeypatch.setattr(outputs, "save_pipeline", bug)
    with pytest.raises(RuntimeError, match="an unforeseen error"):
        _worker(str(folder.path))
    kept = folder.checkpoints / "step-00000003"
    assert [step for step, _ in complete_checkpoints(folder)] == [3]
    [failed] = [event for event in read_events(folder.events) if event.kind == "run_failed"]
    assert failed.advice == ("this is a bug in dbtui; the traceback is in the run's log; the weights trained are kept in the "
                             f"checkpoint of step 3 ({kept}): `dbtui resume {folder.path}` exports them without training "
                             f"again, as does `dbtui export {folder.path} --step 3`")


def test_that_checkpoint_keeps_the_one_with_the_optimizer_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With keep_last_n = 1 the checkpoint saved as the export failed (no optimizer state) deleted the last whole one:
    a resume that trained on (a raised max_train_steps) started the optimizer afresh with no other checkpoint to go to."""
    from engine.training import outputs

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    folder = RunFolder(tmp_path / "run").create()
    saving = {"export": ["diffusers"], "every_n_steps": 2, "keep_last_n": 1}
    save_profile(tiny_profile(tmp_path, training={"max_train_steps": 3}, saving=saving), folder.profile)
    monkeypatch.setattr(outputs, "save_pipeline", full)
    assert _worker(str(folder.path)) == 1
    assert [step for step, _ in complete_checkpoints(folder)] == [2, 3]

    monkeypatch.undo()
    save_profile(tiny_profile(tmp_path, training={"max_train_steps": 4}, saving=saving), folder.profile)
    assert _worker(str(folder.path), "--resume", "latest") == 0
    [warned] = [event for event in read_events(folder.events) if event.kind == "warning" and "optimizer" in event.message]
    assert warned.advice == (f"the checkpoint of step 2 ({folder.checkpoints / 'step-00000002'}) holds its optimizer state: "
                             "to train on exactly (step 3 again among them), stop this run and resume it with "
                             f"`dbtui resume {folder.path} --from 2`")


def test_a_final_export_out_of_gpu_memory_says_the_last_step_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The checkpoint of the last step was saved, but the report gave only the training's memory advice (gradient
    checkpointing, the 8-bit optimizer…), of no use to an export, and said nothing of the weights kept."""
    from engine.training import outputs

    def out_of_memory(*args: object, **kwargs: object) -> None:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    folder = RunFolder(tmp_path / "run").create()
    save_profile(tiny_profile(tmp_path, training={"max_train_steps": 3}, saving={"export": ["diffusers"], "every_n_steps": 5}),
                 folder.profile)
    monkeypatch.setattr(outputs, "save_pipeline", out_of_memory)
    assert _worker(str(folder.path)) == 1
    kept = folder.checkpoints / "step-00000003"
    assert [step for step, _ in complete_checkpoints(folder)] == [3]
    [failed] = [event for event in read_events(folder.events) if event.kind == "run_failed"]
    assert failed.reason == "the GPU ran out of memory in the final export after step 3"
    assert failed.advice == (f"the weights trained are kept in the checkpoint of step 3 ({kept}): `dbtui resume {folder.path}` "
                             f"exports them without training again, as does `dbtui export {folder.path} --step 3`, in a new "
                             "process, without what training held on the GPU (close other programs that use it: "
                             "`nvidia-smi` lists them)")


EXPORT_ON_A_FULL_DISK = """
import errno, sys
from engine.training import outputs
from engine.runs.worker import main
def full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")
outputs.save_pipeline = full
sys.exit(main([sys.argv[1]]))
"""


# Each process's end as train returns it, in ended-RANK beside the run folder (none where it raised).
RECORD_THE_END = """
import os
from pathlib import Path
from engine.runs import in_process
train = in_process.train
def recorded(*args, **kwargs):
    result = train(*args, **kwargs)
    (Path(sys.argv[1]).parent / f"ended-{os.environ['RANK']}").write_text(result.status)
    return result
in_process.train = recorded
"""


def test_a_run_of_two_processes_keeps_the_last_step_too(tmp_path: Path) -> None:
    """A run of several processes saved no checkpoint as its final export failed (the others had gone on past the
    export, and a save's collectives would have hung): every step since its last checkpoint was lost."""
    script = tmp_path / "full.py"
    script.write_text(EXPORT_ON_A_FULL_DISK)
    folder = RunFolder(tmp_path / "run").create()
    save_profile(tiny_profile(tmp_path, training={"max_train_steps": 3}, saving={"export": ["diffusers"], "every_n_steps": 5}),
                 folder.profile)
    script.write_text(EXPORT_ON_A_FULL_DISK.replace("sys.exit(", RECORD_THE_END + "sys.exit("))
    process = launch_two_processes(script, str(folder.path))
    assert process.returncode != 0
    kept = folder.checkpoints / "step-00000003"
    assert [step for step, _ in complete_checkpoints(folder)] == [3], process.stderr[-3000:]
    [failed] = [event for event in read_events(folder.events) if event.kind == "run_failed"]
    assert failed.advice.endswith(f"then `dbtui resume {folder.path}` exports the weights trained, kept in the checkpoint "
                                  f"of step 3 ({kept}), without training again"), failed.advice
    # Process 1 ended 'finished' (on another machine, its `dbtui run` said 'this machine's trainer finished').
    assert (tmp_path / "ended-1").read_text() == "export failed"


# Process 1's save of the last step fails (EIO) once its part is written; the main process, slower (its weights are
# the larger part), writes into the checkpoint's `.partial` folder after that.
EXPORT_WITH_A_FAILING_SECOND_PROCESS = EXPORT_ON_A_FULL_DISK.replace("outputs.save_pipeline = full", """
outputs.save_pipeline = full
import time
from pathlib import Path
from accelerate import Accelerator
failed = Path(sys.argv[2])
save_state = Accelerator.save_state
def save(self, output_dir=None, **kwargs):
    saved = save_state(self, output_dir, **kwargs)
    if self.process_index == 1:
        failed.touch()
        raise OSError(errno.EIO, "Input/output error", output_dir)
    for _ in range(200):
        if failed.exists():
            break
        time.sleep(0.1)
    time.sleep(0.3)
    (Path(output_dir) / "written-last").write_bytes(b"")
    return saved
Accelerator.save_state = save
""")


def test_a_second_process_failing_to_keep_the_last_step_is_reported(tmp_path: Path) -> None:
    """Process 1's failure to save the last step's checkpoint was swallowed (a warning the main process never heard),
    and it deleted the `.partial` folder the main process was writing into, which then failed on a missing file."""
    script = tmp_path / "eio.py"
    script.write_text(EXPORT_WITH_A_FAILING_SECOND_PROCESS)
    folder = RunFolder(tmp_path / "run").create()
    save_profile(tiny_profile(tmp_path, training={"max_train_steps": 3}, saving={"export": ["diffusers"], "every_n_steps": 5}),
                 folder.profile)
    process = launch_two_processes(script, str(folder.path), str(tmp_path / "failed"))
    assert process.returncode != 0
    assert "dbtui trainer: the disk reported an input/output error on" in process.stderr, process.stderr[-3000:]
    warned = [event.message for event in read_events(folder.events) if event.kind == "warning"]
    assert not [message for message in warned if "No such file" in message], warned
