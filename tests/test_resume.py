"""Resume comes from the run folder: its stored profile keeps every --set the run was started
with, and a finished run is never trained again over its outputs."""

from __future__ import annotations

import contextlib
import io
import os
import re
import signal
import subprocess
from pathlib import Path
from typing import NamedTuple

import pytest

from engine.runs.folder import RunFolder
from tests.runs_helpers import DBTUI_RUN_HELD_AT_A_STEP, TrainerHere, profile_file, python, wait_for


def _outputs_fingerprint(folder: RunFolder) -> dict[str, int]:
    return {str(p.relative_to(folder.outputs)): p.stat().st_mtime_ns for p in folder.outputs.rglob("*") if p.is_file()}


def test_the_resume_hint_keeps_the_overrides_and_a_finished_run_is_refused(tmp_path: Path, capsys,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from dbtui.cli import main

    # The trainer holds at step 2 until the Ctrl-C reaches it: stopped at step 2 of 4, the resume trains steps 3-4.
    path = profile_file(tmp_path, training={"max_train_steps": 4}, saving={"every_n_steps": 1000})
    base = RunFolder(tmp_path / "runs" / "t")  # the profile's own name: must stay untouched
    folder = RunFolder(tmp_path / "runs" / "headless1")
    held = tmp_path / "held"
    run = python(DBTUI_RUN_HELD_AT_A_STEP, str(held), "2", "run", str(path), "--plain", "--set", 'name="headless1"',
                 "--set", "training.max_train_steps=4", stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                 start_new_session=True)
    wait_for(held.exists)
    os.killpg(run.pid, signal.SIGINT)  # Ctrl-C in a terminal reaches the CLI and its trainer
    out, _ = run.communicate(timeout=300)
    assert run.returncode == 130, out  # a script sees that the run did not finish
    hint = re.search(r"latest checkpoint \(step \d+\) with: (dbtui resume \S+)", out)
    assert hint and hint.group(1) == f"dbtui resume {folder.path}", out

    stopped_at = folder.read_state().step
    # The CLI in this process, its trainer too: the Ctrl-C above is what processes are for; the resume's trainer process
    # cost its imports and model load, some 10 s of CPU, where what the CLI says of the run is tested.
    trainer = TrainerHere(monkeypatch, as_started=True)
    code = main(["resume", str(folder.path), "--plain"])
    out = "".join(capsys.readouterr())
    assert code == 0 and trainer.statuses == [0], out
    assert f"resumed at step {stopped_at}" in out and "outputs are in" in out
    state = folder.read_state()
    assert stopped_at == 2 and state.status == "finished" and state.step == 4
    assert not base.path.exists()

    kept = _outputs_fingerprint(folder)
    assert kept
    for again in (["resume", str(folder.path)], ["run", str(path), "--set", 'name="headless1"'],
                  ["run", str(path), "--set", 'name="headless1"', "--resume"]):
        code = main([*again, "--plain"])  # refused before a trainer starts: in this process
        out = "".join(capsys.readouterr())
        assert code == 2 and "finished run" in out and "outputs are kept" in out, out
    assert _outputs_fingerprint(folder) == kept and trainer.statuses == [0]  # refused: no trainer started


class EarlyResume(NamedTuple):
    """A run stopped before its first checkpoint, and what its `dbtui resume --plain` did."""

    folder: RunFolder
    hint: str  # resume_hint before the resume
    code: int
    out: str


OLD_STYLE = "stored as older versions wrote it"


@pytest.fixture(scope="module", params=["stored as dbtui writes it", OLD_STYLE])
def early_resume(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> EarlyResume:
    """Stopped during setup (no checkpoint, no step), its RUN/profile.toml as dbtui writes it, or as older versions wrote
    it: an empty saving.output_dir and evaluation.clip_model. One resume each, its trainer in this process (TrainerHere):
    what the resume reads from the folder and says is tested, and a trainer process cost its imports, some 7 s of CPU."""
    import tomli_w

    from dbtui.cli import main
    from dbtui.format import resume_hint
    from engine.profile import dumps_profile, profile_data
    from engine.runs.folder import RunState
    from tests.training_helpers import tiny_profile

    root = tmp_path_factory.mktemp("early")
    folder = RunFolder(root / "runs" / "early").create()
    profile = tiny_profile(root, name="early", training={"max_train_steps": 2})
    data = profile_data(profile)
    data["saving"]["output_dir"] = ""
    data.setdefault("evaluation", {})["clip_model"] = ""
    stored = tomli_w.dumps(data) if request.param == OLD_STYLE else dumps_profile(profile)
    folder.profile.write_text(stored, encoding="utf-8")
    folder.write_state(RunState(pid=0, status="stopped"))
    hint = resume_hint(folder)
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as monkeypatch, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        trainer = TrainerHere(monkeypatch, as_started=True)
        code = main(["resume", str(folder.path), "--plain"])
    assert trainer.statuses == [0]
    return EarlyResume(folder, hint, code, out.getvalue() + err.getvalue())


def test_a_run_stopped_before_its_first_checkpoint_resumes_from_the_start(early_resume: EarlyResume) -> None:
    """Stopped during setup (Ctrl-C while the model loaded): `dbtui resume` trains it from step 0 rather than
    failing for want of a checkpoint, and the hint said so."""
    folder, out = early_resume.folder, early_resume.out
    assert early_resume.hint == f"No checkpoint was saved yet; `dbtui resume {folder.path}` trains it from the start."
    assert early_resume.code == 0, out
    assert "early stopped before it saved a checkpoint: training it from the start" in out and "outputs are in" in out
    assert folder.read_state().status == "finished" and folder.read_state().step == 2


@pytest.mark.parametrize("early_resume", [OLD_STYLE], indirect=True)
def test_a_run_whose_stored_profile_has_an_empty_output_dir_resumes(early_resume: EarlyResume) -> None:
    """Versions that took an empty saving.output_dir (or scorer) wrote it so into RUN/profile.toml; refused when read,
    the run could not be resumed."""
    assert early_resume.code == 0, early_resume.out
    assert early_resume.folder.read_state().status == "finished" and early_resume.folder.read_state().step == 2


def test_a_failed_run_resumed_from_the_start_is_said_failed(tmp_path: Path, monkeypatch, capsys) -> None:
    """A NaN loss before the first checkpoint: its resume said the run "saved no checkpoint before it stopped", a
    failed run, read from its state file before the resume's own replaces it."""
    import sys

    from dbtui.cli.watch import show_started_run
    from engine.profile import dumps_profile
    from engine.runs import launcher
    from engine.runs.folder import RunState
    from tests.training_helpers import tiny_profile

    profile = tiny_profile(tmp_path, name="nan-run")
    folder = RunFolder(tmp_path / "runs" / "nan-run").create()
    folder.profile.write_text(dumps_profile(profile), encoding="utf-8")
    folder.events.write_text("")
    folder.write_state(RunState(pid=0, status="failed", step=3, total_steps=6))
    monkeypatch.setattr(launcher, "worker_command", lambda *_: [sys.executable, "-c", ""])  # no trainer: its words
    started = launcher.start_run(profile, detach=True, resume="latest", run_dir=folder.path)
    started.process.wait()
    assert show_started_run(started, "t", plain=True, every=10, detach=True) == 0
    out = capsys.readouterr().out
    assert f"{folder.path} failed before it saved a checkpoint: training it from the start" in out, out


def _stopped_run(tmp_path: Path, steps: list[int], **sections) -> tuple[RunFolder, Path]:
    """A stopped run's folder with complete (empty) checkpoints at ``steps``, and its profile file."""
    import json

    from engine.runs.folder import RunState

    path = profile_file(tmp_path, name="r", **sections)
    folder = RunFolder(tmp_path / "runs" / "r").create()
    folder.profile.write_text(path.read_text())
    folder.events.write_text("")
    folder.write_state(RunState(pid=0, status="stopped", step=steps[-1], total_steps=100))
    for step in steps:
        checkpoint = folder.checkpoints / f"step-{step:08d}"
        checkpoint.mkdir(parents=True)
        (checkpoint / "manifest.json").write_text(json.dumps({"step": step, "files": {}}))
    return folder, path


def test_a_resume_whose_steps_end_before_the_checkpoint_is_refused_before_it_starts(tmp_path: Path, capsys) -> None:
    """A typo in max_train_steps marked the run finished at once (21/10), exported it, and no resume was possible again."""
    from dbtui.cli import main

    folder, path = _stopped_run(tmp_path, [20, 21])
    assert main(["run", str(path), "--resume", "--set", "training.max_train_steps=10"]) == 2
    err = capsys.readouterr().err
    assert "the run is at step 21 and training.max_train_steps is 10: nothing is left to train" in err
    # It said "above 21" while exactly 21 is taken, and ends the run.
    assert "set max_train_steps above 21 (21 ends the run at this step, with its outputs)" in err
    assert f"`dbtui export {folder.path} --step 21`" in err
    assert folder.read_state().status == "stopped"
    assert main(["run", str(path), "--set", "training.max_train_steps=10",
                 "--resume", str(folder.checkpoints / "step-00000020")]) == 2
    assert "the run is at step 20" in capsys.readouterr().err


def test_a_resume_of_a_run_that_never_started_is_refused(tmp_path: Path, capsys) -> None:
    """A misspelt name (or another working folder) said "saved no checkpoint: training it from the start" and trained."""
    from dbtui.cli import main

    _stopped_run(tmp_path, [4])
    path = profile_file(tmp_path, name="typo")
    assert main(["run", str(path), "--resume"]) == 2
    err = capsys.readouterr().err
    assert f"there is no run to resume in {tmp_path / 'runs' / 'typo'}" in err and f"runs in {tmp_path / 'runs'}: " in err
    assert not (tmp_path / "runs" / "typo").exists()


def test_a_damaged_latest_checkpoint_is_said_before_anything_loads(tmp_path: Path, capsys) -> None:
    import json

    from dbtui.cli import main

    folder, path = _stopped_run(tmp_path, [4, 8])
    latest = folder.checkpoints / "step-00000008"
    (latest / "manifest.json").write_text(json.dumps({"step": 8, "files": {"optimizer.bin": 1000}}))
    (latest / "optimizer.bin").write_bytes(b"x" * 10)
    assert main(["resume", str(folder.path)]) == 2
    err = capsys.readouterr().err
    assert f"the latest checkpoint {latest} is damaged: optimizer.bin has 10 bytes where 1,000 were written" in err
    assert f"--from {folder.checkpoints / 'step-00000004'}" in err


def test_a_checkpoint_past_an_epoch_counted_end_fails_the_run_rather_than_finishing_it(tmp_path: Path) -> None:
    """An epoch count is known only once the images are: the trainer refuses what the launcher cannot see."""
    import pytest

    from engine.runs.in_process import train
    from engine.training.trainer import PastTheEndError
    from tests.training_helpers import tiny_profile

    profile = tiny_profile(tmp_path, training={"max_train_steps": None, "num_train_epochs": 1})

    def resumed_far(trainer) -> None:
        trainer.global_step = trainer.total_steps + 5

    with pytest.raises(PastTheEndError, match="raise training.max_train_steps or num_train_epochs to train on"):
        train(profile, tmp_path / "run", trainer_hook=resumed_far)
    assert not (tmp_path / "run" / "outputs").exists()


def test_the_run_keeps_its_concepts_folders_absolute_so_a_resume_elsewhere_reads_the_same_ones(
        tmp_path: Path, monkeypatch) -> None:
    """`dbtui resume RUN` from another folder read a relative class_dir there and generated a new set of class images."""
    from engine.profile import load_profile
    from engine.runs.launcher import _prepare
    from tests.training_helpers import tiny_profile

    monkeypatch.chdir(tmp_path)
    (tmp_path / "photos").mkdir()
    profile = tiny_profile(tmp_path, concepts=[{"instance_dir": "photos", "instance_prompt": "photo of zwx cup",
                                                "class_dir": "classes", "class_prompt": "photo of a cup"},
                                               {"instance_dir": "builtin:demo-instance", "instance_prompt": "zwx disc"}])
    folder = RunFolder(tmp_path / "runs" / "t")
    _prepare(folder, profile, None, None)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    kept = load_profile(folder.profile)
    assert (kept.concepts[0].instance_dir, kept.concepts[0].class_dir) == (str(tmp_path / "photos"), str(tmp_path / "classes"))
    assert kept.concepts[1].instance_dir == "builtin:demo-instance"


def test_the_run_keeps_a_relative_model_folder_absolute_and_a_hub_id_as_written(tmp_path: Path, monkeypatch) -> None:
    """`dbtui resume RUN` from another folder failed to load `model.pretrained = "models/mine"`, said as a hub id that
    cannot be downloaded (`hf download models/mine`)."""
    from engine.profile import load_profile
    from engine.runs.launcher import _prepare
    from tests.training_helpers import tiny_profile

    monkeypatch.chdir(tmp_path)
    (tmp_path / "models" / "mine").mkdir(parents=True)
    (tmp_path / "vae.safetensors").touch()
    (tmp_path / "scorers" / "clip").mkdir(parents=True)
    profile = tiny_profile(tmp_path, model={"pretrained": "models/mine", "vae": "vae.safetensors",
                                            "tokenizer": "openai/clip-vit-large-patch14"},
                           evaluation={"enabled": True, "clip_model": "./scorers/clip", "dino_model": "facebook/dino-vits16"})
    folder = RunFolder(tmp_path / "runs" / "t")
    _prepare(folder, profile, None, None)
    monkeypatch.chdir(tmp_path / "runs")
    kept = load_profile(folder.profile)
    assert (kept.model.pretrained, kept.model.vae) == (str(tmp_path / "models" / "mine"), str(tmp_path / "vae.safetensors"))
    assert kept.model.tokenizer == "openai/clip-vit-large-patch14"  # a hub id, not a folder here
    # A resume from another folder skipped scoring ("the folder './scorers/clip' does not exist"), or scored with
    # another model of that name, its rounds compared with the earlier ones as one scale.
    assert (kept.evaluation.clip_model, kept.evaluation.dino_model) == (str(tmp_path / "scorers" / "clip"), "facebook/dino-vits16")


def test_a_fresh_start_over_an_attempt_that_never_checkpointed_sets_its_pictures_aside(tmp_path: Path) -> None:
    """Its log was set aside, its previews and scored rounds left: the new run's report showed them as its own steps,
    past where it ended, and its base round held the old prompt list's images."""
    from engine.runs.launcher import _prepare
    from tests.training_helpers import tiny_profile

    folder = RunFolder(tmp_path / "runs" / "t")
    for picture in ("samples/step-000003/grid.png", "evaluation/step-000000/prompt02_00.png"):
        (folder.path / picture).parent.mkdir(parents=True)
        (folder.path / picture).write_bytes(b"png")
    folder.events.write_text("{}\n", encoding="utf-8")
    _prepare(folder, tiny_profile(tmp_path), None, None)
    assert not (folder.path / "evaluation").exists() and list(folder.samples.iterdir()) == []
    [log] = folder.path.glob("events.*.jsonl")
    stamp = log.name.split(".")[1]
    assert (folder.path / f"samples.{stamp}" / "step-000003" / "grid.png").is_file()
    assert (folder.path / f"evaluation.{stamp}" / "step-000000" / "prompt02_00.png").is_file()


def test_a_run_that_kept_its_model_folder_relative_is_resumed_with_it_as_no_change(tmp_path: Path, monkeypatch) -> None:
    """A run started before its model's folder was kept absolute, resumed with `dbtui run P --resume` from the same
    folder, was told 'this profile changes the run's settings: model.pretrained: "models/mine" → "/…/models/mine"'."""
    from engine.profile import dumps_profile
    from engine.runs.launcher import _changes_from_stored, _prepare
    from tests.training_helpers import tiny_profile

    monkeypatch.chdir(tmp_path)
    (tmp_path / "models" / "mine").mkdir(parents=True)
    profile = tiny_profile(tmp_path, model={"pretrained": "models/mine"})
    folder = RunFolder(tmp_path / "runs" / "t")
    _prepare(folder, profile, None, None)
    folder.profile.write_text(dumps_profile(profile), encoding="utf-8")  # as such a run kept it
    assert _changes_from_stored(folder, profile, None, None, "P") == []


def test_a_stopped_foreground_run_says_its_step_once_then_how_to_resume(tmp_path: Path, capsys) -> None:
    """--plain printed "stopped at step 67" twice: the display's line, then again before the resume hint."""
    import sys
    from types import SimpleNamespace

    from dbtui.cli.watch import show_started_run
    from engine.events import RunFinished
    from engine.runs.folder import RunState
    from engine.runs.sinks import JsonlSink

    folder = RunFolder(tmp_path / "run").create()
    folder.profile.write_text("# written by the launch\n", encoding="utf-8")  # what a resume trains
    sink = JsonlSink(folder.events)
    sink(RunFinished(step=67, outputs={}, seconds=1.0, status="stopped"))
    sink.close()
    folder.write_state(RunState(pid=1, status="stopped", step=67, total_steps=200))
    trainer = subprocess.Popen([sys.executable, "-c", ""])
    trainer.wait()
    started = SimpleNamespace(folder=folder, main_machine=True, from_start=False, set_aside=(), process=trainer,
                              events_offset=0, log_offset=0, own_session=False)
    assert show_started_run(started, "t", plain=True, every=10, detach=False) == 0
    out = capsys.readouterr().out
    assert out.count("stopped at step 67") == 1 and "No checkpoint was saved yet; `dbtui resume" in out, out


def test_run_resume_that_would_end_the_run_sooner_than_its_own_steps_is_refused_unless_told(tmp_path: Path, capsys) -> None:
    """`dbtui run P --resume` (the README's restart recipe) read P again without the `--set training.max_train_steps=24`
    the run was started with: it trained to P's 12 steps and marked the run finished for good, without a word."""
    import pytest

    from dbtui.cli import main
    from engine.profile import load_profile, save_profile
    from engine.runs.launcher import _prepare
    from engine.runs.resume_length import ResumeEndsSoonerError

    folder, path = _stopped_run(tmp_path, [8], training={"max_train_steps": 12})
    save_profile(load_profile(path, ["training.max_train_steps=24"]), folder.profile)  # as `--set` started it
    stored = folder.profile.read_text()
    assert main(["run", str(path), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "was started to train 24 steps" in err and "add `--set training.max_train_steps=24`" in err, err
    assert f"`dbtui resume {folder.path}`" in err and "training.max_train_steps: 24 → 12" in err
    assert folder.profile.read_text() == stored
    with pytest.raises(ResumeEndsSoonerError):
        _prepare(folder, load_profile(path), "latest", None, given_keys=["name"])
    # Told so, it is the user's choice, and the changes are said.
    shorter = load_profile(path, ["training.max_train_steps=12", "dataset.hflip=true"])
    changed = _prepare(folder, shorter, "latest", None, given_keys=["training.max_train_steps", "dataset.hflip"]).changed
    assert changed == "dataset.hflip: false → true; training.max_train_steps: 24 → 12"


def test_run_resume_says_the_settings_it_changes_of_the_runs_stored_profile(tmp_path: Path, capsys, monkeypatch) -> None:
    import sys

    from dbtui.cli import main
    from engine.runs import launcher

    folder, path = _stopped_run(tmp_path, [8], training={"max_train_steps": 12})
    monkeypatch.setattr(launcher, "worker_command", lambda *args: [sys.executable, "-c", ""])
    assert main(["run", str(path), "--resume", "--detach", "--set", "training.max_train_steps=30"]) == 0
    out = capsys.readouterr().out
    assert "this profile changes the run's settings, as its profile.toml kept them: training.max_train_steps: 12 → 30" in out
    # The detached stand-in trainer holds the folder until it exits: on a loaded machine, a second start came while it
    # was still starting up and was told a trainer runs there.
    wait_for(lambda: not folder.is_live(), poll=0.05)
    assert main(["resume", str(folder.path), "--detach"]) == 0  # its own profile: nothing to say
    assert "changes the run's settings" not in capsys.readouterr().out


def test_a_resume_in_a_folder_it_cannot_write_says_what_a_resume_can_do(tmp_path: Path, monkeypatch) -> None:
    """It said "set saving.output_dir to a folder on a writable disk", which no resume can: the run is where it is."""
    import errno

    import pytest

    from engine.profile import load_profile
    from engine.runs import launcher
    from engine.runs.folder import RunFolderError

    folder, path = _stopped_run(tmp_path, [4])

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(launcher, "dumps_profile", read_only)
    with pytest.raises(RunFolderError) as refused:
        launcher.start_run(load_profile(folder.profile), resume="latest", run_dir=folder.path)
    assert str(refused.value) == (f"cannot use the folder {folder.path}: the file system is read-only; remount it "
                                  "writable, or copy the run folder to a folder on a writable disk and resume the copy "
                                  "(`dbtui resume COPY`)")
    with pytest.raises(RunFolderError, match="read-only; set saving.output_dir to a folder on a writable disk"):
        launcher.start_run(load_profile(path, ["name='new'"]))
