"""How long a resumed run trains: `dbtui run P --resume` reads P again, without the --set values the run was started
with, so a profile that may end the run sooner than its own is refused unless told, and what the refusal offers can be
done, on machine 0 and on the others alike."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from engine.profile import load_profile, save_profile
from engine.runs.launcher import _prepare, machine_profile
from engine.profile.set_text import set_option
from engine.runs.resume_length import ResumeEndsSoonerError, ResumePastTheEndError
from tests.runs_helpers import profile_file
from tests.test_resume import _stopped_run

TWO_MACHINES = {"num_processes": 2, "num_machines": 2, "main_process_ip": "10.0.0.1", "main_process_port": 29500}


def _refused(folder, profile, given_keys=(), given_as=None) -> str:
    with pytest.raises(ResumeEndsSoonerError) as refused:
        _prepare(folder, profile, "latest", given_as, given_keys=list(given_keys))
    return str(refused.value)


def test_a_shorter_run_before_the_checkpoint_is_not_offered_as_the_way_to_end_it(tmp_path: Path) -> None:
    """Started to 24 steps, checkpoint at 20, the file says 12: the refusal offered `--set training.max_train_steps=12`,
    which was then refused for ending before the checkpoint."""
    folder, path = _stopped_run(tmp_path, [8, 20], training={"max_train_steps": 12})
    save_profile(load_profile(path, ["training.max_train_steps=24"]), folder.profile)
    said = _refused(folder, load_profile(path))
    assert "this profile ends it at step 12, before its checkpoint's step 20" in said
    assert "max_train_steps=12" not in said and "a `--set training.max_train_steps` of 20 or more" in said
    with pytest.raises(ResumePastTheEndError):  # told so, the steps left are what refuses it
        _prepare(folder, load_profile(path, ["training.max_train_steps=12"]), "latest", None,
                 given_keys=["training.max_train_steps"])


def test_machine_n_is_told_its_own_stored_profile_and_a_command_it_can_run(tmp_path: Path) -> None:
    """Machine 1's refusal named RUN/profile.toml (machine 0's) and advised `dbtui resume RUN`, which machine 1
    refuses."""
    folder, path = _stopped_run(tmp_path, [8], training={"max_train_steps": 12}, launch=TWO_MACHINES)
    save_profile(load_profile(path, ["training.max_train_steps=24", "launch.machine_rank=1"]), machine_profile(folder, 1))
    given_as = f"{path} --set launch.machine_rank=1"
    said = _refused(folder, load_profile(path, ["launch.machine_rank=1"]), ["launch.machine_rank"], given_as)
    assert "(training.max_train_steps in its profile-machine-1.toml)" in said
    assert f"kept in {machine_profile(folder, 1)})" in said and "profile.toml" not in said.replace("-machine-1.toml", "")
    assert f"`dbtui run {given_as} --resume --set training.max_train_steps=24`" in said
    assert "dbtui resume" not in said


def test_the_runs_epochs_are_kept_as_its_steps_are(tmp_path: Path) -> None:
    """A run started with `--set training.num_train_epochs=20` and resumed from a file saying 10 ended early, unsaid;
    so did one started to 24 steps resumed from a file with no steps and a few epochs."""
    folder, path = _stopped_run(tmp_path, [8], training={"max_train_steps": None, "num_train_epochs": 10})
    save_profile(load_profile(path, ["training.num_train_epochs=20"]), folder.profile)
    said = _refused(folder, load_profile(path))
    assert said.startswith(f"{folder.path} was started to train 20 epochs (training.num_train_epochs in its profile.toml), "
                           "and this profile ends it after epoch 10")
    assert "add `--set training.num_train_epochs=20`" in said and "`--set training.num_train_epochs=10`" in said
    assert _prepare(folder, load_profile(path, ["training.num_train_epochs=10"]), "latest", None,
                    given_keys=["training.num_train_epochs"]).changed == "training.num_train_epochs: 20 → 10"

    save_profile(load_profile(path, ["training.max_train_steps=24"]), folder.profile)
    said = _refused(folder, load_profile(path))
    assert ("was started to train 24 steps (training.max_train_steps in its profile.toml), and this profile trains 10 "
            "epochs (training.num_train_epochs) instead, which may end it sooner") in said
    assert "add `--set training.max_train_steps=24`" in said

    # Steps in the file count before the run's epochs: the file's own setting is to go, not only --set to be added.
    save_profile(load_profile(path, ["training.num_train_epochs=20"]), folder.profile)
    said = _refused(folder, load_profile(path, ["training.max_train_steps=30"]))
    assert "take training.max_train_steps out of this profile and add `--set training.num_train_epochs=20`" in said
    # More epochs than the run's is no shorter run.
    assert _prepare(folder, load_profile(path, ["training.num_train_epochs=30"]), "latest", None, given_keys=[]).changed


def test_machine_n_says_the_changes_of_its_own_stored_profile(tmp_path: Path, capsys, monkeypatch) -> None:
    from dbtui.cli import main
    from engine.runs import launcher

    folder, path = _stopped_run(tmp_path, [8], training={"max_train_steps": 12}, launch=TWO_MACHINES)
    save_profile(load_profile(path, ["launch.machine_rank=1"]), machine_profile(folder, 1))
    monkeypatch.setattr(launcher, "worker_command", lambda *args: [sys.executable, "-c", ""])
    assert main(["run", str(path), "--resume", "--detach", "--set", "launch.machine_rank=1",
                 "--set", "training.max_train_steps=30"]) == 0
    out = capsys.readouterr().out
    assert ("this profile changes the run's settings, as its profile-machine-1.toml kept them: "
            "training.max_train_steps: 12 → 30") in out


def test_the_command_offered_keeps_the_run_name_given_by_set(tmp_path: Path, capsys, monkeypatch) -> None:
    """A run started with `--set name=r` from a file named otherwise: the refusal of `dbtui run P --resume --set
    name=r` offered `dbtui run P --resume --set training.max_train_steps=24`, which resumes the file's own run."""
    import shlex

    from dbtui.cli import main
    from engine.runs import launcher

    folder, path = _stopped_run(tmp_path, [8], training={"max_train_steps": 12})
    save_profile(load_profile(path, ["training.max_train_steps=24"]), folder.profile)
    save_profile(load_profile(path, ["name=other"]), path)
    assert main(["run", str(path), "--resume", "--set", "name=r"]) == 2
    offered = re.search(r"as in `(dbtui run [^`]*)`", capsys.readouterr().err).group(1)
    assert offered == f"dbtui run {path} --set name=r --resume --set training.max_train_steps=24"
    monkeypatch.setattr(launcher, "worker_command", lambda *args: [sys.executable, "-c", ""])
    assert main([*shlex.split(offered)[1:], "--detach"]) == 0
    assert folder.read_state().status == "starting"  # this run resumed, not the file's own
    assert set_option("name", "123") == """--set 'name="123"'"""  # TOML would read a bare 123 as a number


def test_machine_n_whose_run_folder_cannot_be_written_is_not_sent_to_dbtui_resume(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Machine 1's resume, its log not writable, was told to resume a copy with `dbtui resume COPY`: refused on
    machine 1's own disk, and on a shared one it trains the copy's profile.toml, machine 0's part."""
    import errno

    from engine.runs.folder import RunFolderError
    from engine.runs.launcher import start_run

    folder, path = _stopped_run(tmp_path, [8], training={"max_train_steps": 12}, launch=TWO_MACHINES)
    save_profile(load_profile(path, ["launch.machine_rank=1"]), machine_profile(folder, 1))
    opened = Path.open

    def refused(self: Path, mode: str = "r", *args: object, **kwargs: object):  # as root, chmod refuses nothing
        if self.name == "trainer-machine-1.log" and "a" in mode:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return opened(self, mode, *args, **kwargs)

    monkeypatch.setattr(Path, "open", refused)
    with pytest.raises(RunFolderError) as refused:
        start_run(load_profile(path, ["launch.machine_rank=1"]), resume="latest", given_keys=["launch.machine_rank"])
    assert "resume this machine's part from there" in str(refused.value)
    assert "dbtui resume" not in str(refused.value).replace("(not `dbtui resume`", "")


def no_new_folders(monkeypatch: pytest.MonkeyPatch, run: Path) -> None:
    """``run`` on a read-only disk: no folder can be made in it."""
    import errno

    made = Path.mkdir

    def read_only(self: Path, *args, **kwargs) -> None:
        if self.is_relative_to(run) and not self.is_dir():
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        made(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", read_only)


def test_a_resume_whose_run_folder_cannot_be_made_whole_is_told_what_a_resume_can_do(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """A resume whose run folder lacks a folder (samples/, on machine 1's own disk) that a read-only disk will not let
    be made was told to "set saving.output_dir to a folder on a writable disk", which moves no run: by machine 1's
    trainer and by the launcher, on every machine."""
    from engine.runs import worker
    from engine.runs.folder import RunFolderError
    from engine.runs.launcher import start_run

    folder, path = _stopped_run(tmp_path, [8], training={"max_train_steps": 12}, launch=TWO_MACHINES)
    save_profile(load_profile(path, ["launch.machine_rank=1"]), machine_profile(folder, 1))
    folder.samples.rmdir()
    no_new_folders(monkeypatch, folder.path)
    with pytest.raises(RunFolderError) as refused:
        start_run(load_profile(path, ["launch.machine_rank=1"]), resume="latest", given_keys=["launch.machine_rank"])
    assert "remount it writable, or copy the run folder" in str(refused.value)
    assert "resume this machine's part from there" in str(refused.value) and "saving.output_dir to" not in str(refused.value)
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert worker.main([str(folder.path), "--resume", "latest", "--profile", str(machine_profile(folder, 1))]) == 1
    said = capsys.readouterr().err
    assert "resume this machine's part from there" in said and "saving.output_dir to" not in said
    with pytest.raises(RunFolderError) as refused:  # machine 0's resume: its own words
        start_run(load_profile(path), resume="latest")
    assert "resume the copy (`dbtui resume COPY`)" in str(refused.value) and "saving.output_dir to" not in str(refused.value)
    with pytest.raises(RunFolderError, match="set saving.output_dir to a folder on a writable disk"):
        folder.create()  # a new run's: another output_dir is its way


def test_a_resume_of_a_run_with_no_checkpoint_on_a_read_only_disk_is_told_a_resumes_way(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A lone machine's resume of a run that saved no checkpoint starts it afresh, and so was told "set
    saving.output_dir to a folder on a writable disk", which `dbtui resume` cannot take (it has no --set)."""
    from engine.runs.folder import RunFolder, RunFolderError, RunState
    from engine.runs.launcher import start_run

    path = profile_file(tmp_path, name="r")
    folder = RunFolder(tmp_path / "runs" / "r").create()
    folder.profile.write_text(path.read_text())
    folder.events.write_text("")
    folder.write_state(RunState(pid=0, status="stopped", step=3, total_steps=100))
    folder.samples.rmdir()
    no_new_folders(monkeypatch, folder.path)
    with pytest.raises(RunFolderError) as refused:
        start_run(load_profile(path), resume="latest")
    assert "remount it writable, or copy the run folder" in str(refused.value)
    assert "resume the copy (`dbtui resume COPY`)" in str(refused.value) and "saving.output_dir to" not in str(refused.value)


def test_a_folder_or_file_in_the_place_of_a_run_file_is_named(tmp_path: Path) -> None:
    """A folder where the trainer's log goes was said as "cannot use the folder RUN: Is a directory", and a file named
    logs as "File exists": the run folder, not what stands in the way, was named. Moving it is the way: a copy of the
    run folder, which the advice then offered too, holds it as well and is refused alike."""
    import shutil

    from engine.runs.folder import RunFolderError
    from engine.runs.launcher import machine_log, start_run

    folder, path = _stopped_run(tmp_path, [8], training={"max_train_steps": 12}, launch=TWO_MACHINES)
    save_profile(load_profile(path, ["launch.machine_rank=1"]), machine_profile(folder, 1))
    for rank, profile in ((1, load_profile(path, ["launch.machine_rank=1"])), (0, load_profile(path))):
        machine_log(folder, rank).unlink(missing_ok=True)
        machine_log(folder, rank).mkdir()
        with pytest.raises(RunFolderError) as refused:
            start_run(profile, resume="latest", given_keys=["launch.machine_rank"])
        assert str(refused.value).startswith(f"cannot use the folder {folder.path}: '{machine_log(folder, rank)}' is a "
                                             "folder, where dbtui writes a file; move it out of the run folder")
        assert "copy" not in str(refused.value)
        shutil.rmtree(folder.log.parent)
        folder.log.parent.write_text("")
        with pytest.raises(RunFolderError, match=f"'{re.escape(str(folder.log.parent))}' is a file, not a folder; move "
                                                 "it out of the run folder$"):
            start_run(profile, resume="latest", given_keys=["launch.machine_rank"])
        folder.log.parent.unlink()
        folder.log.parent.mkdir()

def test_epochs_given_where_the_files_steps_count_first_are_not_taken_as_told(tmp_path: Path) -> None:
    """Started to 400 steps, resumed from a file saying 12 with `--set training.num_train_epochs=30`: taken as told,
    the run ended at the file's 12 steps for good (max_train_steps counts before the epochs)."""
    folder, path = _stopped_run(tmp_path, [8], training={"max_train_steps": 12})
    save_profile(load_profile(path, ["training.max_train_steps=400"]), folder.profile)
    said = _refused(folder, load_profile(path, ["training.num_train_epochs=30"]), ["training.num_train_epochs"])
    assert "this profile ends it at step 12" in said and "add `--set training.max_train_steps=400`" in said
    # Without steps in the file, the epochs given are the run's length, as told.
    save_profile(load_profile(path, ['training.max_train_steps=""']), path)
    assert _prepare(folder, load_profile(path, ["training.num_train_epochs=30"]), "latest", None,
                    given_keys=["training.num_train_epochs"]).changed
