"""A run that meets the machine's file problems (permissions, a full or read-only disk, its folder
deleted, a damaged checkpoint) fails with what to do, never as "a bug in dbtui", and its state keeps
the step it had reached."""

from __future__ import annotations

import errno
import io
import json
import os
from pathlib import Path

import pytest

from engine.runs.file_errors import RunFilesError, run_files_error
from engine.runs.folder import RunFolder, RunState
from engine.runs.sinks import read_events
from engine.runs.supervisor import Supervisor
from tests.runs_helpers import trained_as_by_dbtui_run


@pytest.mark.parametrize(("code", "said", "advice"), [
    (errno.EACCES, "permission denied on 'runs/x/samples/step-000200'", "chmod u+w"),
    (errno.ENOSPC, "the disk is full", "df -h"),
    (errno.EDQUOT, "quota used up", "keep_last_n"),
    (errno.EROFS, "is read-only", "writable disk"),
    (errno.EIO, "input/output error", "dmesg"),
    (errno.ENOTDIR, "is in the way: a file stands where dbtui writes a folder", "move it out of the run folder"),
])
def test_the_machines_file_errors_say_what_happened_and_what_to_do(code: int, said: str, advice: str, tmp_path: Path) -> None:
    error = run_files_error(OSError(code, "x", "runs/x/samples/step-000200"), tmp_path)
    assert isinstance(error, RunFilesError) and said in str(error) and advice in error.advice


def test_a_full_disk_is_told_with_the_folder_whose_disk_filled(tmp_path: Path) -> None:
    """`df -h RUN` showed the run folder's disk wherever the write had failed: with outputs/ (or checkpoints/) a mount
    of its own, the user freed space on a disk that had it and the run failed again. The folder of the failed write
    is named (its nearest still there: a hidden temporary is removed as the write fails); the run folder where the
    error names no file."""
    lora = tmp_path / "run" / "outputs" / "lora"
    lora.mkdir(parents=True)
    full = OSError(errno.ENOSPC, "No space left on device", str(lora / ".lora.1.partial" / "model.safetensors"))
    assert run_files_error(full, tmp_path / "run", then="then export again").advice == (
        f"free some space (`df -h {lora}`); then export again")
    full = OSError(errno.ENOSPC, "No space left on device")
    assert run_files_error(full, tmp_path / "run", then="then export again").advice == (
        f"free some space (`df -h {tmp_path / 'run'}`); then export again")


def test_a_read_only_disk_is_told_what_a_run_can_do_where_it_is(tmp_path: Path) -> None:
    """It said "put saving.output_dir on a writable disk … then `dbtui resume RUN`": a resume trains the run where it
    is, whatever saving.output_dir says (the launcher's wording for a resume's folder says so)."""
    read_only = OSError(errno.EROFS, "Read-only file system", str(tmp_path / "samples" / "step-000200"))
    advice = run_files_error(read_only, tmp_path).advice
    assert "saving.output_dir" not in advice
    assert advice.startswith(f"remount it writable; then `dbtui resume {tmp_path}` trains it again from the start")
    assert advice.endswith("Or copy the run folder to a folder on a writable disk and resume the copy (`dbtui resume COPY`)")
    assert run_files_error(read_only, tmp_path, then="then export again").advice == "remount it writable; then export again"


def test_the_advice_to_resume_says_whether_the_run_has_a_checkpoint_to_resume_from(tmp_path: Path) -> None:
    full = OSError(errno.ENOSPC, "No space left on device", "runs/x/outputs/.diffusers.partial/unet")
    assert "trains it again from the start: it has no checkpoint" in run_files_error(full, tmp_path).advice
    (tmp_path / "checkpoints" / "step-00000020").mkdir(parents=True)
    (tmp_path / "checkpoints" / "step-00000020" / "manifest.json").write_text('{"step": 20}')
    assert "continues from its latest checkpoint" in run_files_error(full, tmp_path).advice
    assert "keep_last_n" in run_files_error(full, tmp_path).advice  # a run's checkpoints take disk
    assert "keep_last_n" not in run_files_error(full, tmp_path, then="then export again").advice  # an export writes none


def test_an_output_folder_whose_writing_fails_leaves_no_partial_folder(tmp_path: Path) -> None:
    from engine.training.outputs import atomic_folder

    def fill_the_disk(folder: Path) -> None:
        (folder / "unet").mkdir(parents=True)
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError):
        atomic_folder(tmp_path / "outputs" / "diffusers", fill_the_disk)
    assert list((tmp_path / "outputs").iterdir()) == []


def _safetensors_error(code: int, path: str) -> Exception:
    from safetensors import SafetensorError

    return SafetensorError(f"Error while serializing: I/O error: {os.strerror(code)} (os error {code}) at path \"{path}\"")


def test_safetensors_writers_disk_errors_are_the_machines_too(tmp_path: Path) -> None:
    """Its Rust writer raises SafetensorError, whose errno is only in its text: a full disk was "a bug"."""
    from safetensors import SafetensorError

    from engine.errors import os_error_in
    from engine.runs.file_errors import said_as_run_files_error

    found = os_error_in(_safetensors_error(errno.ENOSPC, "/runs/x/.tmpAb12"))
    assert (found.errno, found.filename) == (errno.ENOSPC, "/runs/x/.tmpAb12")
    assert os_error_in(SafetensorError("Error while deserializing header: header too large")) is None
    with pytest.raises(RunFilesError, match="the disk is full"):
        with said_as_run_files_error(tmp_path, then="then export again"):
            raise _safetensors_error(errno.ENOSPC, str(tmp_path / "x"))


@pytest.mark.parametrize(("code", "said"), [(errno.EROFS, "its file system is read-only"),
                                            (errno.ENOSPC, "not enough disk space in")])
def test_a_converters_write_on_a_read_only_or_full_disk_is_said_even_when_the_cleanup_fails_too(
        code: int, said: str, tmp_path: Path, monkeypatch) -> None:
    from engine.convert._files import atomic_dir, atomic_file
    from engine.convert.errors import ConvertError

    def refused(*args, **kwargs):
        raise OSError(code, "refused")

    monkeypatch.setattr(Path, "unlink", refused)  # on a read-only disk removing the partial file fails as well
    with pytest.raises(ConvertError, match=said):
        with atomic_file(tmp_path / "out.safetensors"):
            raise _safetensors_error(code, str(tmp_path / ".tmp1"))
    with pytest.raises(ConvertError, match=said):
        with atomic_dir(tmp_path / "lora"):
            raise OSError(code, "refused", str(tmp_path / "lora.partial" / "x"))
    with pytest.raises(OSError, match="not found"):  # an input's error is the input's to say
        with atomic_file(tmp_path / "out.safetensors"):
            raise OSError(errno.ENOENT, "not found", "/elsewhere/input.safetensors")


def test_a_missing_file_is_the_machines_only_when_the_run_folder_is_gone(tmp_path: Path) -> None:
    missing = OSError(errno.ENOENT, "No such file or directory", str(tmp_path / "run" / "samples" / "grid.png"))
    assert run_files_error(missing, tmp_path) is None  # the folder is there: something of ours went wrong
    gone = run_files_error(missing, tmp_path / "run")
    assert gone is not None and "moved or deleted while the run trained" in str(gone)


def test_a_run_whose_files_cannot_be_written_fails_with_advice_not_as_a_bug(tmp_path: Path) -> None:
    from engine.runs.in_process import train
    from tests.training_helpers import tiny_profile

    def refused(trainer, step: int) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "run" / "samples" / f"step-{step:06d}"))

    with pytest.raises(RunFilesError):
        train(tiny_profile(tmp_path, training={"max_train_steps": 2}), tmp_path / "run", step_hooks=[refused])
    failed = [e for e in read_events(tmp_path / "run" / "events.jsonl") if e.kind == "run_failed"]
    assert len(failed) == 1 and "permission denied on" in failed[0].reason and "bug" not in failed[0].advice
    assert not (tmp_path / "run" / "traceback.txt").exists()


def test_a_failure_before_the_trainer_knows_its_step_keeps_the_runs_step(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path / "run").create()
    folder.write_state(RunState(pid=1, status="starting", step=300, total_steps=1000))
    Supervisor(folder).write_failed()
    state = folder.read_state()
    assert (state.status, state.step, state.total_steps) == ("failed", 300, 1000)


def test_resuming_from_a_damaged_checkpoint_names_it_and_the_run_keeps_its_step(tmp_path: Path, capsys) -> None:
    from dbtui.cli import main
    from tests.training_helpers import tiny_profile

    # Trained in this process: what is tested is the resume, whose trainer is a process of its own.
    folder = trained_as_by_dbtui_run(tiny_profile(tmp_path, training={"max_train_steps": 4},
                                                  saving={"every_n_steps": 2, "keep_last_n": 3}))
    # As if it had stopped at step 2: its state and its log say so.
    folder.write_state(RunState(pid=1, status="stopped", step=2, total_steps=4))
    folder.events.write_text("".join(line for line in folder.events.read_text().splitlines(keepends=True)
                                     if '"run_finished"' not in line))
    optimizer = folder.checkpoints / "step-00000002" / "optimizer.bin"
    # Damaged where its size still matches (a size that does not is refused before anything loads: test_resume.py).
    data = optimizer.read_bytes()
    optimizer.write_bytes(b"\0" * 100 + data[100:])
    code = main(["resume", str(folder.path), "--plain"])
    out = "".join(capsys.readouterr())
    assert code == 1, out
    assert "step-00000002 is damaged and cannot be loaded" in out and "bug in dbtui" not in out
    assert f"`dbtui resume {folder.path} --from CHECKPOINT`" in out
    state = json.loads(folder.state_file.read_text())
    assert (state["status"], state["step"], state["total_steps"]) == ("failed", 2, 4)


def test_a_report_that_cannot_be_written_is_said_and_leaves_no_half_written_file(tmp_path: Path, capsys) -> None:
    from dbtui.cli import main
    from engine.events import RunStarted

    folder = RunFolder(tmp_path / "run").create()
    folder.events.write_text(RunStarted(run_dir="r", profile={}, hardware={}, versions={}, total_steps=3).to_json() + "\n")
    (folder.path / "report.html").mkdir()  # a folder in the page's place
    assert main(["report", str(folder.path)]) == 2
    err = capsys.readouterr().err
    assert f"'{folder.path / 'report.html'}' is in the way" in err and f"then `dbtui report {folder.path}` writes it" in err
    assert sorted(p.name for p in folder.path.iterdir() if p.name.startswith(".")) == []


def test_a_trainer_refused_by_a_live_runs_lock_leaves_that_runs_state_alone(tmp_path: Path, trainer_of) -> None:
    from engine.runs import worker

    folder = RunFolder(tmp_path / "run").create()
    trainer_pid = trainer_of(folder.path)
    live = RunState(pid=trainer_pid, status="running", step=40, total_steps=300)
    folder.write_state(live)
    folder.lock.write_text(str(trainer_pid))  # held by a live trainer that is not this one
    assert worker.main([str(folder.path)]) == 1
    assert folder.read_state() == live and folder.lock.read_text() == str(trainer_pid)


def test_a_resume_stopped_before_its_first_step_keeps_the_runs_step(tmp_path: Path, monkeypatch, capsys) -> None:
    """It wrote step 0, and `dbtui runs` showed "-" for a run with checkpoints up to step 100 (and a nan loss)."""
    from engine.profile import save_profile
    from engine.runs import in_process, worker
    from engine.training.trainer import RunResult
    from tests.training_helpers import tiny_profile

    monkeypatch.setattr(Supervisor, "watch_setup_requests", lambda self: None)
    monkeypatch.setattr(in_process, "train", lambda *args, **kwargs: RunResult("stopped", 0, 0))
    folder = RunFolder(tmp_path / "run").create()
    save_profile(tiny_profile(tmp_path), folder.profile)
    folder.write_state(RunState(pid=1, status="stopped", step=100, total_steps=300, last_loss=0.125))
    assert worker.main([str(folder.path)]) == 0
    state = folder.read_state()
    assert (state.status, state.step, state.total_steps, state.last_loss) == ("stopped", 100, 300, 0.125)
    assert "stopped at step 100" in capsys.readouterr().out


def test_a_checkpoint_this_user_may_not_read_is_said_as_such_not_as_damaged(tmp_path: Path) -> None:
    from engine.runs.checkpoints import CheckpointError
    from engine.runs.restore_part import restore_part

    class Unreadable:
        @classmethod
        def from_pretrained(cls, source, **options):
            raise PermissionError(errno.EACCES, "Permission denied", str(source))

        def load_state_dict(self, state):
            raise AssertionError("nothing was read")

    (tmp_path / "unet").mkdir()
    with pytest.raises(CheckpointError, match=r"may not read its unet weights.*chmod -R a\+r"):
        restore_part(Unreadable(), "unet", tmp_path)


def test_machine_n_is_told_its_own_way_to_go_on_not_dbtui_resume(tmp_path: Path, monkeypatch, capsys) -> None:
    """Machine 1's trainer said "then `dbtui resume RUN` continues": refused where the folder holds only machine 1's
    files, and on a disk the machines share it trains profile.toml, machine 0's part. Its log line had no advice."""
    from engine.profile import save_profile
    from engine.runs import in_process, worker
    from tests.training_helpers import tiny_profile

    full = OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "cache" / "x"))
    advice = run_files_error(full, tmp_path, machine_rank=1).advice
    assert "then `dbtui run PROFILE --set launch.machine_rank=1` trains this machine's part again" in advice
    assert f"kept in {tmp_path / 'profile-machine-1.toml'}" in advice and "dbtui resume" not in advice
    (tmp_path / "checkpoints" / "step-00000020").mkdir(parents=True)
    (tmp_path / "checkpoints" / "step-00000020" / "manifest.json").write_text('{"step": 20}')
    advice = run_files_error(full, tmp_path, machine_rank=1).advice
    assert "then `dbtui run PROFILE --resume --set launch.machine_rank=1` resumes this machine's part" in advice
    assert "dbtui resume" not in advice
    read_only = run_files_error(OSError(errno.EROFS, "Read-only file system", str(tmp_path / "x")), tmp_path, machine_rank=1)
    assert "resume this machine's part from there" in read_only.advice
    assert "dbtui resume" not in read_only.advice.replace("(not `dbtui resume`", "")
    gone = run_files_error(OSError(errno.ENOENT, "gone", str(tmp_path / "run" / "x")), tmp_path / "run", machine_rank=1)
    assert "`dbtui run PROFILE --set launch.machine_rank=1`" in gone.advice and "dbtui resume" not in gone.advice
    # Machine 0's words stay.
    assert f"then `dbtui resume {tmp_path}` continues from its latest checkpoint" in run_files_error(full, tmp_path).advice

    two_machines = {"num_processes": 2, "num_machines": 2, "main_process_ip": "10.0.0.1", "main_process_port": 29500}
    profile = tiny_profile(tmp_path, training={"max_train_steps": 2}, launch={**two_machines, "machine_rank": 1})

    def refused(trainer, step: int) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "run" / "cache" / "x"))

    with pytest.raises(RunFilesError) as raised:  # the trainer knows its machine
        in_process.train(profile, tmp_path / "run", step_hooks=[refused])
    assert "--set launch.machine_rank=1" in raised.value.advice and "dbtui resume" not in raised.value.advice

    def fails(*args, **kwargs):
        raise raised.value

    monkeypatch.setattr(in_process, "train", fails)
    run = tmp_path / "run"
    save_profile(profile, run / "profile-machine-1.toml")
    assert worker.main([str(run), "--profile", str(run / "profile-machine-1.toml")]) == 1
    said = [line for line in capsys.readouterr().err.splitlines() if line.startswith("dbtui trainer:")]
    assert said == [f"dbtui trainer: {raised.value}; {raised.value.advice}"]  # the line its `dbtui run` shows


def test_machine_0_of_several_with_no_checkpoint_is_told_to_start_again_not_to_resume(tmp_path: Path) -> None:
    """`dbtui resume RUN` trains a lone machine's run afresh where it saved no checkpoint, but a resume of several
    machines needs one (each must find it): machine 0 was told to resume, which failed "no complete checkpoint"."""
    from dbtui.format import resume_hint
    from engine.profile import save_profile
    from tests.training_helpers import tiny_profile

    folder = RunFolder(tmp_path / "run").create()
    for machines, said in ((1, f"`dbtui resume {folder.path}` trains it"), (2, "`dbtui run PROFILE` on every machine")):
        launch = {"num_machines": machines, "num_processes": machines, "main_process_ip": "10.0.0.1"}
        save_profile(tiny_profile(tmp_path, launch=launch), folder.profile)
        assert said in resume_hint(folder), resume_hint(folder)
        error = run_files_error(OSError(errno.ENOSPC, "No space left on device"), folder.path, machines=machines)
        assert said in error.advice and ("without --resume" in error.advice) is (machines > 1), error.advice


def test_a_special_file_system_is_said_to_refuse_files_too(tmp_path: Path) -> None:
    """A Save as path under /proc was told the file system "does not allow new folders", where a file was refused."""
    from engine.runs.folder import unusable_folder

    said = str(unusable_folder(Path("/proc/p.toml").parent, OSError(errno.ENOENT, "No such file", "/proc/p.toml"),
                               "the Save as path"))
    assert "does not allow new files or folders here; set the Save as path to a folder on a normal disk" in said


def test_a_disk_filled_up_during_a_checkpoints_save_is_said_as_full_not_as_a_bug(tmp_path: Path, monkeypatch) -> None:
    """torch.save's writer says a full disk as RuntimeError("… unexpected pos 64 vs 0"), with no errno: the run failed
    as "a bug in dbtui", and its half-written checkpoint kept the disk full."""
    import shutil
    from collections import namedtuple

    from accelerate import Accelerator

    from engine.runs.in_process import train
    from tests.training_helpers import tiny_profile

    real_usage = shutil.disk_usage
    filled: list[bool] = []

    def usage(path):
        total, used, free = real_usage(path)
        return namedtuple("usage", "total used free")(total, used, 0 if filled else free)

    def fills_the_disk(self, output_dir: str, **kwargs) -> None:
        (Path(output_dir) / "model.safetensors").parent.mkdir(parents=True, exist_ok=True)
        (Path(output_dir) / "model.safetensors").write_bytes(b"\0" * 64)
        filled.append(True)
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")

    monkeypatch.setattr(shutil, "disk_usage", usage)
    monkeypatch.setattr(Accelerator, "save_state", fills_the_disk)
    with pytest.raises(RunFilesError, match="the disk is full"):
        supervisor = Supervisor(RunFolder(tmp_path / "run").create())
        train(tiny_profile(tmp_path, training={"max_train_steps": 2}, saving={"every_n_steps": 1}), tmp_path / "run",
              step_hooks=[supervisor.on_step], trainer_hook=supervisor.attach)
    failed = [e for e in read_events(tmp_path / "run" / "events.jsonl") if e.kind == "run_failed"]
    assert len(failed) == 1 and "bug" not in failed[0].advice and "df -h" in failed[0].advice
    assert list((tmp_path / "run" / "checkpoints").iterdir()) == []  # no half-written checkpoint takes the disk


def test_a_base_model_folder_deleted_while_the_run_trained_is_said_at_the_export(tmp_path: Path, tiny_sd1: Path) -> None:
    """The export reads the frozen text encoder again from the base model's folder: deleted during the run, the run
    failed as "a bug in dbtui" with huggingface's "Repo id must be in the form 'repo_name'"."""
    import shutil

    from engine.runs.in_process import train
    from tests.training_helpers import tiny_profile

    model = shutil.copytree(tiny_sd1, tmp_path / "model")

    def delete_the_model(trainer, step: int) -> None:
        if step == 2:
            shutil.rmtree(model)

    profile = tiny_profile(tmp_path, model={"pretrained": str(model)}, training={"max_train_steps": 2})
    with pytest.raises(RunFilesError, match=f"the base model folder {model} is gone"):
        train(profile, tmp_path / "run", step_hooks=[delete_the_model])
    failed = [e for e in read_events(tmp_path / "run" / "events.jsonl") if e.kind == "run_failed"]
    assert len(failed) == 1 and "bug" not in failed[0].advice and "put the model back there" in failed[0].advice


def test_a_failed_save_on_a_disk_with_room_left_is_not_said_as_full(tmp_path: Path, monkeypatch) -> None:
    """A writer failure that is not the disk's (a network disk's I/O error says the same "unexpected pos") was said as
    a full disk whenever the half-written checkpoint, or another program, had taken the disk below the save's estimate,
    though gigabytes were still free."""
    import shutil
    from collections import namedtuple

    from engine.runs.checkpoint_write import save_state_aside

    needed = 10 * 2**30

    class Accelerator:
        is_local_main_process = True

        def save_state(self, output_dir: str) -> None:
            Path(output_dir).mkdir()
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")

    monkeypatch.setattr(shutil, "disk_usage", lambda path: namedtuple("usage", "total used free")(0, 0, needed // 2))
    with pytest.raises(RuntimeError, match="unexpected pos"):
        save_state_aside(Accelerator(), tmp_path / "step-00000002.partial", needed)
    assert not (tmp_path / "step-00000002.partial").exists()


def test_another_process_whose_save_fails_leaves_the_partial_folder_to_the_main_one(tmp_path: Path) -> None:
    """Every process removed the checkpoint's `.partial` folder as its own save failed, while the main process, its
    weights the larger part, was still writing into it."""
    from engine.runs.checkpoint_write import save_state_aside

    partial = tmp_path / "step-00000002.partial"

    class Accelerator:
        is_local_main_process = False

        def save_state(self, output_dir: str) -> None:
            Path(output_dir).mkdir(exist_ok=True)
            raise OSError(errno.EIO, "Input/output error", output_dir)

    partial.mkdir()
    (partial / "model.safetensors").write_bytes(b"the main process's")
    with pytest.raises(OSError, match="Input/output error"):
        save_state_aside(Accelerator(), partial, 2**20)
    assert (partial / "model.safetensors").is_file()


def test_a_part_deleted_from_the_base_model_folder_while_the_run_trained_is_said_at_the_export(tmp_path: Path,
                                                                                               tiny_sd1: Path) -> None:
    """The folder still there, its text_encoder/ gone: the run failed as "a bug in dbtui" with transformers' "Error no
    file named model.safetensors … found in directory"."""
    import shutil

    from engine.runs.in_process import train
    from tests.training_helpers import tiny_profile

    model = shutil.copytree(tiny_sd1, tmp_path / "model")

    def delete_a_part(trainer, step: int) -> None:
        if step == 2:
            shutil.rmtree(model / "text_encoder")

    profile = tiny_profile(tmp_path, model={"pretrained": str(model)}, training={"max_train_steps": 2})
    with pytest.raises(RunFilesError, match=f"the base model folder {model} no longer has text_encoder/"):
        train(profile, tmp_path / "run", step_hooks=[delete_a_part])
    failed = [e for e in read_events(tmp_path / "run" / "events.jsonl") if e.kind == "run_failed"]
    assert len(failed) == 1 and "bug" not in failed[0].advice and "put text_encoder/ back" in failed[0].advice


def test_a_hub_models_download_deleted_while_the_run_trained_is_said_as_downloaded_again(tmp_path: Path, tiny_sd1: Path,
                                                                                          monkeypatch) -> None:
    """A hub id's folder is its download in the Hugging Face cache (cleared by `hf cache delete`, say): the run was told
    to 'put the model back there', in the cache's snapshot folder, where a resume downloads it again."""
    import shutil

    import engine.models.loading as loading
    from engine.runs.in_process import train
    from tests.training_helpers import tiny_profile

    snapshot = tmp_path / "hub" / "models--someone--tiny" / "snapshots" / "0123"
    shutil.copytree(tiny_sd1, snapshot)
    monkeypatch.setattr(loading, "_from_hub", lambda name, revision: snapshot)

    def clear_the_cache(trainer, step: int) -> None:
        if step == 2:
            shutil.rmtree(tmp_path / "hub")

    profile = tiny_profile(tmp_path, model={"pretrained": "someone/tiny"}, training={"max_train_steps": 2})
    with pytest.raises(RunFilesError, match="copy of the base model someone/tiny .* is gone") as raised:
        train(profile, tmp_path / "run", step_hooks=[clear_the_cache])
    assert "put the model back" not in raised.value.advice and "downloads (or converts) it again" in raised.value.advice


def test_a_full_disk_during_an_export_names_the_output_folder_not_its_removed_work_folder(tmp_path: Path) -> None:
    """The kohya file's writer filling the disk was said as "writing '…/step-2/.export.HOST.PID.HEX.partial/me-lora.
    safetensors'", a hidden folder already removed: it names the output folder now, whose earlier export is kept."""
    from types import SimpleNamespace

    from engine.runs.file_errors import said_as_run_files_error
    from engine.training.outputs import save_outputs
    from tests.training_helpers import tiny_profile

    def full(lora: Path, target: Path, components: object, emit: object) -> None:
        target.write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device", str(target))

    out = tmp_path / "exports" / "step-2"
    profile = tiny_profile(tmp_path, training={"method": "lora"}, saving={"export": ["lora_kohya"]})
    family = SimpleNamespace(export_lora=lambda folder, unet, encoders: folder.mkdir(),
                             export_lora_kohya=lambda lora, target, components, emit: target.write_text("earlier"))
    save_outputs(profile, SimpleNamespace(family=family), None, None, out, lambda event: None)  # the earlier export
    family.export_lora_kohya = full
    before = {path.name: path.read_bytes() for path in out.iterdir() if path.is_file()}
    with pytest.raises(RunFilesError) as said:
        with said_as_run_files_error(tmp_path, then="then export again"):
            save_outputs(profile, SimpleNamespace(family=family), None, None, out, lambda event: None)
    assert str(said.value).startswith(f"the disk is full (or the quota used up) writing '{out}' (its unfinished files "
                                      "were removed; the outputs already there are kept)"), said.value
    assert said.value.advice == f"free some space (`df -h {out}`); then export again"
    assert not [path for path in out.iterdir() if path.name.endswith(".partial")]
    assert {path.name: path.read_bytes() for path in out.iterdir() if path.is_file()} == before


class _FullDisk(io.RawIOBase):
    """A file on a disk with no byte left: every write fails, as the buffered stream's flush and close then do."""

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")


def test_a_disk_that_fills_up_between_saves_fails_the_run_with_its_advice_not_a_traceback(tmp_path: Path, monkeypatch,
                                                                                         capsys) -> None:
    """With no byte left, the heartbeat's state.json failed; the events' close, then the failed state's write, met
    the full disk again and each replaced the run's error: the trainer ended with an OSError traceback, its `dbtui run`
    saying "stopped unexpectedly … (killed, or out of host memory?)", and a `.state.PID.tmp` left in the run folder."""
    from engine.profile import save_profile
    from engine.runs import sinks, worker
    from tests.training_helpers import tiny_profile

    run = tmp_path / "run"
    save_profile(tiny_profile(tmp_path, training={"max_train_steps": 3}), RunFolder(run).create().profile)
    full: list[bool] = []
    opened: list[sinks.JsonlSink] = []
    sink_init, write_text, on_step = sinks.JsonlSink.__init__, Path.write_text, Supervisor.on_step

    def kept_sink(self, path: Path) -> None:
        sink_init(self, path)
        opened.append(self)

    def state_on_full_disk(self, *args, **kwargs):
        if full and self.name.startswith(".state."):
            self.touch()  # the file is made; its contents fail to be written as it closes, with no file named
            raise OSError(errno.ENOSPC, "No space left on device")
        return write_text(self, *args, **kwargs)

    def fill_the_disk(self, trainer, step: int) -> None:
        full.append(True)
        for sink in opened:
            sink._file = io.TextIOWrapper(io.BufferedWriter(_FullDisk()), encoding="utf-8")
        self._last_beat = 0.0  # the heartbeat is written at this step
        on_step(self, trainer, step)

    monkeypatch.setattr(sinks.JsonlSink, "__init__", kept_sink)
    monkeypatch.setattr(Path, "write_text", state_on_full_disk)
    monkeypatch.setattr(Supervisor, "on_step", fill_the_disk)
    assert worker.main([str(run)]) == 1
    said = [line for line in capsys.readouterr().err.splitlines() if line.startswith("dbtui trainer:")]
    assert len(said) == 1 and f"the disk is full (or the quota used up) writing '{run / 'state.json'}'" in said[0]
    assert f"free some space (`df -h {run}`)" in said[0] and f"dbtui resume {run}" in said[0]
    assert not list(run.glob(".state.*"))


def test_a_stopped_run_of_several_machines_with_a_checkpoint_says_how_every_machine_resumes(tmp_path: Path) -> None:
    """Machine 0 said only `dbtui resume RUN`: resumed alone, its trainer waits for the other machines, and
    `dbtui resume` on machine 1 is refused (it trains profile.toml, machine 0's part)."""
    from dbtui.format import resume_hint
    from engine.profile import save_profile
    from tests.training_helpers import tiny_profile

    folder = RunFolder(tmp_path / "run").create()
    (folder.checkpoints / "step-00000010").mkdir(parents=True)
    (folder.checkpoints / "step-00000010" / "manifest.json").write_text(json.dumps({"step": 10}), encoding="utf-8")
    lone = f"Resume from its latest checkpoint (step 10) with: dbtui resume {folder.path}"
    save_profile(tiny_profile(tmp_path), folder.profile)
    assert resume_hint(folder) == lone
    launch = {"num_machines": 2, "num_processes": 2, "main_process_ip": "10.0.0.1"}
    save_profile(tiny_profile(tmp_path, launch=launch), folder.profile)
    said = resume_hint(folder)
    assert said.startswith(f"{lone} on machine 0, and on every other machine N"), said
    assert "`dbtui run PROFILE --resume --set launch.machine_rank=N`" in said and "checkpoints/step-00000010" in said


def test_a_report_on_a_read_only_run_folder_is_told_of_output_which_writes_it_elsewhere(tmp_path: Path, capsys,
                                                                                          monkeypatch) -> None:
    """`dbtui report RUN` on a read-only mount said only "remount it writable": its refusal now names --output, which
    writes the page elsewhere and leaves the run folder alone."""
    from dbtui.cli import main
    from engine.events import RunStarted

    folder = RunFolder(tmp_path / "run").create()
    folder.events.write_text(RunStarted(run_dir="r", profile={}, hardware={}, versions={}, total_steps=3).to_json() + "\n")
    write_text = Path.write_text

    def read_only_mount(path: Path, *args, **kwargs):
        if path.parent == folder.path:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return write_text(path, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", read_only_mount)
    assert main(["report", str(folder.path)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert (f"remount it writable; then `dbtui report {folder.path}` writes it; or write it elsewhere now, with "
            f"`dbtui report {folder.path} --output FILE`") in err, err
    page = tmp_path / "elsewhere" / "my-run.html"
    assert main(["report", str(folder.path), "--output", str(page)]) == 2  # its folder is not there
    assert f"--output: there is no folder {page.parent} to write my-run.html in" in capsys.readouterr().err
    page.parent.mkdir()
    assert main(["report", str(folder.path), "--output", str(page)]) == 0
    assert capsys.readouterr().out.strip() == str(page)
    assert page.read_text(encoding="utf-8").startswith("<!DOCTYPE html>") and not (folder.path / "report.html").exists()
    assert sorted(p.name for p in page.parent.iterdir()) == ["my-run.html"]  # no temporary left beside it


@pytest.mark.parametrize(("output", "fix"), [
    ("locked/x.html", "give yourself access with `chmod u+rx {locked}` (read to list it, execute to open its files)"),
    ("locked/sub/x.html", "the folder above it, {locked}, cannot be entered: give yourself access with `chmod u+rx "
                          "{locked}`")], ids=["in it", "below it"])
def test_report_output_in_a_folder_the_user_may_not_enter_is_refused_with_its_chmod(output: str, fix: str,
                                                                                     tmp_path: Path) -> None:
    """`dbtui report RUN --output locked/x.html`, locked a folder of chmod 000, said "unexpected error (PermissionError
    …). This is a bug in dbtui": the check for a folder there raised (Python 3.11's is_dir)."""
    from engine.events import RunStarted
    from tests.as_a_user import dbtui_as_a_user

    folder = RunFolder(tmp_path / "run").create()
    folder.events.write_text(RunStarted(run_dir="r", profile={}, hardware={}, versions={}, total_steps=3).to_json() + "\n")
    locked = tmp_path / "locked"
    (locked / "sub").mkdir(parents=True)
    locked.chmod(0o000)
    try:
        done = dbtui_as_a_user("report", "run", "--output", output, cwd=tmp_path)
    finally:
        locked.chmod(0o755)
    said = " ".join(done.stderr.split())
    assert done.returncode == 2 and "unexpected error" not in said, said
    assert (f"dbtui: --output: cannot reach {output} (Permission denied): {fix.format(locked=locked)}; or give a file in "
            "a folder you can write") in said, said
    assert not (folder.path / "report.html").exists()


@pytest.mark.parametrize("output", ["ro/x.html", None], ids=["--output", "the run folder's"])
def test_a_report_in_a_folder_the_user_may_not_write_names_the_page_not_its_temporary(output: str | None,
                                                                                       tmp_path: Path) -> None:
    """`dbtui report RUN --output ro/x.html`, ro a folder of chmod 555, said "permission denied on 'ro/.x.html.PID.tmp'":
    a hidden file the user never gave, gone by the time they looked."""
    from engine.events import RunStarted
    from tests.as_a_user import dbtui_as_a_user

    folder = RunFolder(tmp_path / "run").create()
    folder.events.write_text(RunStarted(run_dir="r", profile={}, hardware={}, versions={}, total_steps=3).to_json() + "\n")
    (tmp_path / "ro").mkdir()
    locked = tmp_path / "ro" if output else folder.path
    locked.chmod(0o555)
    try:
        done = dbtui_as_a_user("report", "run", *(["--output", output] if output else []), cwd=tmp_path)
    finally:
        locked.chmod(0o755)
    said = " ".join(done.stderr.split())
    page = output or "run/report.html"
    assert done.returncode == 2 and f"dbtui: permission denied on '{page}'" in said, said
    assert ".tmp" not in said, said
    assert sorted(p.name for p in locked.iterdir() if p.name.startswith(".")) == []
