"""``dbtui resume --from CHECKPOINT``: a missing checkpoint is refused before a trainer starts, and a
resume from an earlier checkpoint moves the later ones aside, so that neither a plain resume nor the
rotation mixes the branch it leaves with the one it starts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from safetensors.torch import load_file

from dbtui.cli import main
from engine.profile import save_profile
from engine.runs.checkpoints import CheckpointError, complete_checkpoints, latest_checkpoint
from engine.runs.launcher import _prepare
from engine.runs.resume_point import SET_ASIDE, chosen_step, set_aside_later
from tests.runs_helpers import run_with_checkpoints
from tests.training_helpers import tiny_profile


def test_resuming_from_an_earlier_checkpoint_sets_the_later_ones_aside_whole(tmp_path: Path) -> None:
    folder, profile = run_with_checkpoints(tmp_path, [500, 1000, 1154])
    moved = _prepare(folder, profile, str(folder.checkpoints / "step-00001000"), None).set_aside
    assert [step for step, _ in complete_checkpoints(folder)] == [500, 1000]
    assert latest_checkpoint(folder) == folder.checkpoints / "step-00001000"  # a plain resume continues the new branch
    assert [path.name for path in moved] == ["step-00001154"]
    assert moved[0].parent.parent == folder.path / SET_ASIDE
    assert load_file(moved[0] / "model.safetensors")["step"].item() == 1154  # kept, not deleted


@pytest.mark.parametrize("fails", ["profile", "spawn"])
def test_a_resume_whose_launch_fails_leaves_the_later_checkpoints_in_place(fails: str, tmp_path: Path, monkeypatch) -> None:
    """They were moved aside first; a full disk writing the profile, or a trainer that could not be started, then
    left the run continuing from the earlier step at the next plain resume, unsaid."""
    import subprocess

    from engine.runs import launcher
    from engine.runs.folder import RunFolderError

    folder, profile = run_with_checkpoints(tmp_path, [500, 1000, 1154])

    def refused(*args, **kwargs):
        raise OSError(28, "No space left on device")

    if fails == "profile":
        monkeypatch.setattr(launcher, "dumps_profile", refused)
    else:
        monkeypatch.setattr(subprocess, "Popen", refused)
    with pytest.raises((RunFolderError, OSError)):
        launcher.start_run(profile, resume=str(folder.checkpoints / "step-00000500"))
    assert [step for step, _ in complete_checkpoints(folder)] == [500, 1000, 1154]
    assert not (folder.path / SET_ASIDE).exists()


def test_resuming_from_the_latest_sets_nothing_aside(tmp_path: Path) -> None:
    folder, _ = run_with_checkpoints(tmp_path, [500, 1000])
    assert set_aside_later(folder, chosen_step(folder, folder.checkpoints / "step-00001000")) == []
    assert not (folder.path / SET_ASIDE).exists()


def test_a_missing_or_incomplete_checkpoint_is_refused_with_the_kept_ones(tmp_path: Path) -> None:
    folder, _ = run_with_checkpoints(tmp_path, [500, 1000])
    with pytest.raises(CheckpointError, match="no checkpoint folder .*step-99999999; the run's kept checkpoints: .*step-00000500"):
        chosen_step(folder, folder.checkpoints / "step-99999999")
    incomplete = folder.checkpoints / "step-00001500.partial"
    incomplete.mkdir()
    with pytest.raises(CheckpointError, match="not a complete dbtui checkpoint.*kept checkpoints"):
        chosen_step(folder, incomplete)


@pytest.mark.parametrize("step", ["null", "Infinity", "true", "-3", "1.5", '"500"', None])
def test_a_checkpoint_whose_manifest_names_no_step_is_refused_as_damaged_before_a_trainer_starts(
        step: str | None, tmp_path: Path, monkeypatch) -> None:
    """{"step": null} was "not a complete dbtui checkpoint", true or -3 "not one of this run's", and Infinity raised
    OverflowError out of `dbtui resume --from`; the launcher read the step again, with int(), after the trainer started."""
    import subprocess

    from engine.runs import launcher

    folder, profile = run_with_checkpoints(tmp_path, [500, 1000])
    damaged = folder.checkpoints / "step-00000500"
    manifest = json.loads((damaged / "manifest.json").read_text())
    del manifest["step"]
    written = json.dumps(manifest)
    if step is not None:
        written = written.replace("{", f'{{"step": {step}, ', 1)
    (damaged / "manifest.json").write_text(written)
    monkeypatch.setattr(subprocess, "Popen", lambda *args, **kwargs: pytest.fail("a trainer was started"))
    held = f'"step": {step}' if step is not None else 'no "step"'
    with pytest.raises(CheckpointError, match=f"checkpoint {re.escape(str(damaged))} is damaged: its manifest.json names "
                                              f"no step \\({re.escape(held)}\\); the run's kept checkpoints: .*step-00001000"):
        launcher.start_run(profile, resume=str(damaged))
    assert [step for step, _ in complete_checkpoints(folder)] == [1000]  # nothing was set aside


def test_dbtui_resume_from_a_missing_checkpoint_exits_2_before_a_trainer_starts(tmp_path: Path, capsys) -> None:
    folder, _ = run_with_checkpoints(tmp_path, [500, 1000, 1154])
    code = main(["resume", str(folder.path), "--from", str(folder.checkpoints / "step-99999999")])
    err = capsys.readouterr().err
    assert code == 2 and "no checkpoint folder" in err and "step-00001154" in err
    assert folder.read_state() is None and not folder.log.exists()  # no trainer was started
    assert len(complete_checkpoints(folder)) == 3


def test_another_runs_checkpoint_is_refused_before_anything_is_set_aside(tmp_path: Path, capsys) -> None:
    folder, _ = run_with_checkpoints(tmp_path, [200, 253])
    other, _ = run_with_checkpoints(tmp_path / "other", [4])
    code = main(["resume", str(folder.path), "--from", str(other.checkpoints / "step-00000004")])
    err = capsys.readouterr().err
    assert code == 2 and "is not one of this run's complete checkpoints" in err and "step-00000253" in err
    assert [step for step, _ in complete_checkpoints(folder)] == [200, 253] and not (folder.path / SET_ASIDE).exists()


def _scribble_on_the_header(file: Path) -> None:
    data = bytearray(file.read_bytes())
    data[8:24] = b"X" * 16  # the same size, the tensor table unreadable
    file.write_bytes(bytes(data))


@pytest.mark.parametrize(("damage", "said"), [(lambda file: file.unlink(), "model.safetensors is missing"),
                                           (lambda file: file.write_bytes(b"cut"), "model.safetensors has 3 bytes where"),
                                           (_scribble_on_the_header, "model.safetensors is")])
def test_a_damaged_checkpoint_is_refused_before_the_later_good_ones_are_set_aside(damage, said: str, tmp_path: Path, capsys) -> None:
    """A resume from it set the later checkpoints aside, then failed: the run was left with the damaged one alone."""
    folder, _ = run_with_checkpoints(tmp_path, [200, 253, 300])
    damage(folder.checkpoints / "step-00000200" / "model.safetensors")
    code = main(["resume", str(folder.path), "--from", str(folder.checkpoints / "step-00000200")])
    err = capsys.readouterr().err
    assert code == 2 and f"step-00000200 is damaged: {said}" in err and "step-00000300" in err
    assert [step for step, _ in complete_checkpoints(folder)] == [200, 253, 300] and not (folder.path / SET_ASIDE).exists()


def test_rotation_takes_the_manifest_first_and_clears_what_a_cut_short_delete_left(tmp_path: Path, monkeypatch) -> None:
    """A kill during the rotation's delete left a manifest beside no weights: a "complete" checkpoint that could not load."""
    import shutil
    from types import SimpleNamespace

    from engine.runs.checkpoints import Checkpointer

    folder, profile = run_with_checkpoints(tmp_path, [100, 200, 300])
    left = folder.checkpoints / "step-00000050"  # a delete cut short earlier: its manifest went first
    left.mkdir()
    (left / "optimizer.bin").write_bytes(b"x")
    checkpointer = object.__new__(Checkpointer)
    two_kept = tiny_profile(tmp_path, saving={"keep_last_n": 2})
    checkpointer.trainer, checkpointer.folder = SimpleNamespace(profile=two_kept, emit=lambda event: None), folder
    real_rmtree, manifests = shutil.rmtree, []
    monkeypatch.setattr(shutil, "rmtree", lambda path, **kw: (manifests.append((Path(path) / "manifest.json").exists()),
                                                             real_rmtree(path, **kw)))
    checkpointer._rotate()
    assert sorted(path.name for path in folder.checkpoints.iterdir()) == ["step-00000200", "step-00000300"]
    assert manifests and not any(manifests)  # no folder went while it still looked complete


def test_a_set_aside_checkpoint_is_refused_with_how_to_go_back_to_it(tmp_path: Path) -> None:
    folder, profile = run_with_checkpoints(tmp_path, [500, 1000])
    [moved] = _prepare(folder, profile, str(folder.checkpoints / "step-00000500"), None).set_aside
    with pytest.raises(CheckpointError, match=f"set aside by an earlier resume.*move its folder into {folder.checkpoints}"):
        chosen_step(folder, moved)


@pytest.mark.parametrize("changed", [{"model": {"pretrained": "builtin:tiny-flux"}},
                                     {"training": {"method": "lora", "max_train_steps": 6, "seed": 7}},
                                     {"optimizer": {"learning_rate": 1e-5}},  # the checkpoint's state kept the old one
                                     {"dataset": {"resolution": 32}},  # applied halfway through, silently
                                     # the optimizer state's groups: refused on load, as a damaged checkpoint
                                     {"training": {"method": "full", "max_train_steps": 6, "seed": 7, "train_text_encoder": True}},
                                     # the loss the steps so far were trained on
                                     {"training": {"method": "full", "max_train_steps": 6, "seed": 7, "noise_offset": 0.1}}])
def test_a_resume_with_a_profile_of_another_model_or_method_is_refused_and_the_runs_profile_kept(
        changed: dict, tmp_path: Path, capsys) -> None:
    folder, _ = run_with_checkpoints(tmp_path, [62])
    stored = folder.profile.read_text()
    other = save_profile(tiny_profile(tmp_path, **changed), tmp_path / "other.toml")
    code = main(["run", str(other), "--resume", "--set", f"saving.output_dir={folder.path.parent}"])
    err = capsys.readouterr().err
    assert code == 2 and "checkpoints were trained with" in err and f"dbtui resume {folder.path}" in err
    assert folder.profile.read_text() == stored and folder.read_state() is None


def test_a_resume_with_more_steps_is_the_same_run(tmp_path: Path) -> None:
    folder, _ = run_with_checkpoints(tmp_path, [4])
    _prepare(folder, tiny_profile(tmp_path, training={"method": "full", "max_train_steps": 60, "seed": 7},
                                  sampling={"num_images": 1}), "latest", None)
    assert "max_train_steps = 60" in folder.profile.read_text()


def test_a_changed_learning_rate_is_named_with_both_values(tmp_path: Path) -> None:
    from engine.runs.folder import RunFolderError
    from engine.runs.resume_point import check_same_model

    folder, _ = run_with_checkpoints(tmp_path, [4])
    with pytest.raises(RunFolderError, match=r"optimizer.learning_rate = 0.0001, not 1e-05"):
        check_same_model(folder, tiny_profile(tmp_path, optimizer={"learning_rate": 1e-5}))


@pytest.mark.parametrize("state", [None, '{"pid": 12, "stat', "[1, 2]",
                                   '{"pid": 999999, "status": "running", "step": 10, "total_steps": 40}'])
def test_a_finished_run_whose_state_file_is_lost_or_damaged_is_known_finished_by_its_log(state: str | None, tmp_path: Path) -> None:
    """It was "unknown", and a resume trained again over its outputs."""
    from engine.events import RunFinished, RunStarted
    from engine.runs.start_refusals import RunFinishedError
    from engine.runs.sinks import JsonlSink

    folder, profile = run_with_checkpoints(tmp_path, [35])
    sink = JsonlSink(folder.events)
    for event in (RunStarted(run_dir=str(folder.path), profile={}, hardware={}, versions={}, total_steps=40),
                  RunFinished(step=40, outputs={}, seconds=1.0)):
        sink(event)
    sink.close()
    if state is not None:
        folder.state_file.write_text(state)
    assert folder.finished_step() == 40
    with pytest.raises(RunFinishedError, match="holds a finished run \\(step 40"):
        _prepare(folder, profile, "latest", None)
    assert [step for step, _ in complete_checkpoints(folder)] == [35]


def test_a_finished_run_whose_state_file_is_lost_and_finish_line_damaged_is_known_finished_by_its_outputs(
        tmp_path: Path) -> None:
    """Its run_finished line skipped by the reader and its state file gone, it read "unknown": `dbtui resume` trained
    again from its latest checkpoint and wrote over its outputs."""
    import json

    from engine.events import RunStarted, StepEnded
    from engine.runs.start_refusals import RunFinishedError
    from engine.runs.sinks import JsonlSink

    folder, profile = run_with_checkpoints(tmp_path, [35])
    sink = JsonlSink(folder.events)
    for event in (RunStarted(run_dir=str(folder.path), profile={}, hardware={}, versions={}, total_steps=40),
                  StepEnded(step=40, total_steps=40, epoch=0, loss=0.1, smoothed_loss=0.1, lr=1e-4, it_per_s=1.0, eta_s=0.0)):
        sink(event)
    sink.close()
    with folder.events.open("a") as events:  # a finish whose step is not a number: the reader skips it
        events.write(json.dumps({"kind": "run_finished", "time": 1.0, "step": "forty", "outputs": {}, "seconds": 1.0,
                                 "status": "finished"}) + "\n")
    assert folder.finished_step() is None and folder.status() == "crashed"  # neither the state nor the events say it
    folder.outputs.mkdir()
    (folder.outputs / "profile.toml").write_text("name = 't'\n")  # written by the trainer once its final model is whole
    assert folder.finished_step() == 40 and folder.status() == "finished"
    with pytest.raises(RunFinishedError, match="holds a finished run \\(step 40"):
        _prepare(folder, profile, "latest", None)


def test_an_edit_of_the_runs_own_profile_is_checked_against_what_the_checkpoint_was_trained_with(tmp_path: Path) -> None:
    """`dbtui resume RUN` reads RUN/profile.toml: edited there, a new size or learning rate went through unchecked."""
    from engine.profile import load_profile
    from engine.runs.folder import RunFolderError
    from engine.runs.resume_point import check_same_model

    folder, profile = run_with_checkpoints(tmp_path, [4, 8])
    manifest = folder.checkpoints / "step-00000008" / "manifest.json"
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "profile": profile.model_dump(mode="json")}))
    folder.profile.write_text(folder.profile.read_text().replace("resolution = 64", "resolution = 32"))
    with pytest.raises(RunFolderError, match=f"dataset.resolution = 64, not 32.*reads {folder.profile}: put them back"):
        check_same_model(folder, load_profile(folder.profile))


def test_a_checkpoint_recorded_with_an_empty_scorer_is_still_checked_against(tmp_path: Path) -> None:
    """Such a record no longer loaded, and the check that a resume trains the same model was skipped in silence."""
    from engine.runs.folder import RunFolderError
    from engine.runs.resume_point import check_same_model

    folder, profile = run_with_checkpoints(tmp_path, [4])
    recorded = profile.model_dump(mode="json")
    recorded["evaluation"]["clip_model"] = recorded["saving"]["output_dir"] = ""
    manifest = folder.checkpoints / "step-00000004" / "manifest.json"
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "profile": recorded}))
    with pytest.raises(RunFolderError, match=r"optimizer.learning_rate = 0.0001, not 1e-05"):
        check_same_model(folder, tiny_profile(tmp_path, optimizer={"learning_rate": 1e-5}))


def test_an_export_of_a_damaged_checkpoint_names_the_checkpoint_before_any_model_loads(tmp_path: Path) -> None:
    """It named the export's own temporary copy (RUN/.export-PID-step-…), after the base model had loaded."""
    from engine.runs.export import export_checkpoint

    folder, _ = run_with_checkpoints(tmp_path, [500, 1000])
    damaged = folder.checkpoints / "step-00000500" / "model.safetensors"
    damaged.write_bytes(damaged.read_bytes()[:-4])
    with pytest.raises(CheckpointError, match=r"checkpoint .*/checkpoints/step-00000500 is damaged: model.safetensors has "
                                              r".*; export another with --step \(kept: 1000\)") as raised:
        export_checkpoint(folder.path, 500)
    assert ".export-" not in str(raised.value)


def test_a_resume_stopped_in_setup_stands_at_its_checkpoints_step_not_at_the_branch_set_aside(
        tmp_path: Path, monkeypatch, capsys) -> None:
    """Stopped before its first step, a resume --from step 20 said step 0 (run_finished, the foreground's line) and its
    state kept step 39, of the branch the resume set aside."""
    import signal

    from engine.runs.folder import RunState
    from engine.runs.sinks import read_events
    from engine.runs.supervisor import Supervisor
    from engine.runs.worker import main as worker

    folder, _ = run_with_checkpoints(tmp_path, [20])
    save_profile(tiny_profile(tmp_path, prior={"enabled": True}, concepts=[{
        "instance_dir": "builtin:demo-instance", "instance_prompt": "photo of zwx disc", "class_dir": "builtin:demo-class",
        "class_prompt": "photo of a disc", "num_class_images": 8}]), folder.profile)
    folder.write_state(RunState(pid=1, status="stopped", step=39, total_steps=200))
    monkeypatch.setattr(Supervisor, "install_signals", lambda self: self.cancel.set())  # a stop as the trainer starts
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        assert worker([str(folder.path), "--resume", str(folder.checkpoints / "step-00000020")]) == 0
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    state = folder.read_state()
    assert (state.status, state.step, state.total_steps) == ("stopped", 20, 200)
    assert [e.step for e in read_events(folder.events) if e.kind == "run_finished"] == [20]
    assert "stopped at step 20;" in capsys.readouterr().out


def test_attach_on_a_stopped_run_says_how_to_resume_it(tmp_path: Path, capsys) -> None:
    """It ended with "stopped at step 60" and no resume command, which the foreground run prints."""
    from engine.events import RunFinished, RunStarted
    from engine.runs.folder import RunState
    from engine.runs.sinks import JsonlSink

    folder, _ = run_with_checkpoints(tmp_path, [60])
    sink = JsonlSink(folder.events)
    sink(RunStarted(run_dir=str(folder.path), profile={}, hardware={}, versions={}, total_steps=2000))
    sink(RunFinished(step=60, outputs={}, seconds=1.0, status="stopped"))
    sink.close()
    folder.write_state(RunState(pid=1, status="stopped", step=60, total_steps=2000))
    assert main(["attach", str(folder.path), "--plain"]) == 0
    out = capsys.readouterr().out
    assert f"stopped at step 60\nResume from its latest checkpoint (step 60) with: dbtui resume {folder.path}" in out


def test_a_resume_from_an_earlier_checkpoint_is_shown_at_that_step_while_it_starts(tmp_path: Path, monkeypatch) -> None:
    """`dbtui runs` showed the step of the branch the resume set aside until the trainer wrote its own state."""
    import sys

    from engine.runs import launcher
    from engine.runs.folder import RunState

    folder, profile = run_with_checkpoints(tmp_path, [500, 1000, 1154])
    folder.write_state(RunState(pid=0, status="stopped", step=1160, total_steps=2000, last_loss=0.25))
    monkeypatch.setattr(launcher, "worker_command", lambda *args: [sys.executable, "-c", "import time; time.sleep(60)"])
    # The latest checkpoint's step too: the steps trained after it are lost, and their loss is not this step's.
    for resume, step, loss in (("latest", 1154, None), (str(folder.checkpoints / "step-00001000"), 1000, None)):
        started = launcher.start_run(profile, resume=resume)
        started.process.kill()
        started.process.wait()
        state = folder.read_state()
        # Its loss too, which went to "-" in `dbtui runs`; the set-aside branch's is not the earlier step's.
        assert (state.status, state.step, state.total_steps, state.last_loss) == ("starting", step, 2000, loss)


def test_a_resume_names_both_values_of_a_changed_lora_shape_flow_or_base_model_setting(tmp_path: Path) -> None:
    """A changed quantized base or flow shift resumed without a word, and a LoRA change was said without its values."""
    from engine.runs.folder import RunFolderError
    from engine.runs.resume_point import check_same_model

    folder, _ = run_with_checkpoints(tmp_path, [4])
    lora = {"method": "lora", "max_train_steps": 2000, "seed": 7}
    save_profile(tiny_profile(tmp_path, training=lora), folder.profile)
    changed = tiny_profile(tmp_path, training={**lora, "lora": {"rank": 16}, "flow": {"shift": 3.0}},
                           model={"pretrained": "builtin:tiny-sd1", "vae": "some/vae"})
    with pytest.raises(RunFolderError) as refused:
        check_same_model(folder, changed)
    said = str(refused.value)
    # Values as TOML writes them (the refusal says to put them back in RUN/profile.toml): not None, True or 'text'.
    assert "training.lora.rank = 8, not 16" in said and "training.flow.shift = unset, not 3.0" in said
    assert 'model.vae = unset, not "some/vae"' in said


def test_a_resume_takes_a_model_or_vae_path_written_another_way_for_the_same_one(tmp_path: Path, monkeypatch) -> None:
    """A relative path and its absolute spelling (or a symlink) were refused as another model or VAE."""
    from engine.runs.folder import RunFolderError
    from engine.runs.resume_point import check_same_model

    (tmp_path / "base").mkdir()
    (tmp_path / "vae").mkdir()
    (tmp_path / "vae-link").symlink_to(tmp_path / "vae")
    monkeypatch.chdir(tmp_path)
    folder, _ = run_with_checkpoints(tmp_path, [4])
    written = {"max_train_steps": 2000, "seed": 7}
    save_profile(tiny_profile(tmp_path, training=written, model={"pretrained": "base", "vae": "./vae"}), folder.profile)
    check_same_model(folder, tiny_profile(tmp_path, training=written,
                                          model={"pretrained": str(tmp_path / "base"), "vae": str(tmp_path / "vae-link")}))
    (tmp_path / "other").mkdir()
    with pytest.raises(RunFolderError) as refused:
        check_same_model(folder, tiny_profile(tmp_path, training=written, model={"pretrained": "base", "vae": "other"}))
    assert 'model.vae = "./vae", not "other"' in str(refused.value)


def test_a_resume_shows_no_loss_of_the_steps_it_loses_after_its_checkpoint(tmp_path: Path) -> None:
    """Killed at step 9 (checkpoint 8), then resumed with max_train_steps = 8, the run read `finished 8/8` with step
    9's loss."""
    from types import SimpleNamespace

    from engine.runs.folder import RunState
    from engine.runs.supervisor import Supervisor

    folder, _ = run_with_checkpoints(tmp_path, [4, 8])
    folder.write_state(RunState(pid=0, status="running", step=9, total_steps=24, last_loss=0.5))
    supervisor = Supervisor(folder, resume=folder.checkpoints / "step-00000008")
    supervisor.write_state("finished", 8, 8, float("nan"))  # no step trained in this attempt
    assert (folder.read_state().step, folder.read_state().last_loss) == (8, None)
    supervisor.trainer = SimpleNamespace(global_step=10, total_steps=24, last_loss=0.25)
    supervisor.write_failed()  # the trainer's own last loss, where it has one
    assert (folder.read_state().step, folder.read_state().last_loss) == (10, 0.25)
    # Stopped at its checkpoint, the run's loss is that step's, and stays shown until a step is trained.
    folder.write_state(RunState(pid=0, status="stopped", step=8, total_steps=24, last_loss=0.5))
    Supervisor(folder, resume=folder.checkpoints / "step-00000008").write_failed()
    assert folder.read_state().last_loss == 0.5
