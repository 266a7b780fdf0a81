"""A run whose length is in epochs (or the default) counts its steps of its images: a resume goes on to the total its
checkpoint recorded, whatever images were added or taken away since, and says so."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from dbtui.cli import main
from engine.builtin import resolve_dir
from engine.profile import load_profile
from engine.runs.folder import RunFolder
from tests.test_resume import _stopped_run
from tests.training_helpers import tiny_profile


def _epoch_run_stopped_at(tmp_path: Path, step: int) -> tuple[RunFolder, Path]:
    """A run of 2 epochs of 6 images (12 steps), stopped with a checkpoint at ``step``; and its images' folder."""
    from engine.runs.in_process import train
    from engine.runs.supervisor import Supervisor

    images = tmp_path / "images"
    shutil.copytree(resolve_dir("builtin:demo-instance"), images)
    profile = tiny_profile(tmp_path, name="ep", concepts=[{"instance_dir": str(images), "instance_prompt": "photo of zwx"}],
                           training={"max_train_steps": None, "num_train_epochs": 2})
    folder = RunFolder(tmp_path / "runs" / "ep").create()
    supervisor = Supervisor(folder)

    def stop_at(trainer, at: int) -> None:
        if at == step:
            (folder.control / "stop").touch()
        supervisor.on_step(trainer, at)

    result = train(profile, folder.path, step_hooks=[stop_at], trainer_hook=supervisor.attach)
    supervisor.write_state(result.status, result.step, result.total_steps)
    assert (result.status, result.total_steps) == ("stopped", 12)
    return folder, images


def test_a_resume_of_an_epoch_run_goes_on_to_its_total_when_its_images_changed(tmp_path: Path, capsys) -> None:
    """Stopped at step 4 of 2 epochs of 6 images, with 5 images taken away since: `dbtui resume` loaded the model, then
    failed ("this profile's run is 2 steps"); with images added, it trained a longer run than the one begun."""
    folder, images = _epoch_run_stopped_at(tmp_path, 4)
    for image in sorted(images.glob("zwx_0[1-5].*")):
        image.unlink()
    code = main(["resume", str(folder.path), "--plain"])  # in this process: its trainer is a process all the same
    out = "".join(capsys.readouterr())
    assert code == 0, out
    state = folder.read_state()
    assert (state.status, state.step) == ("finished", 12)
    warnings = [json.loads(line) for line in folder.events.read_text().splitlines() if '"warning"' in line]
    assert any("instance images changed since it began (6 → 1): it goes on to the 12 steps its 2 epochs made of them, "
               "not the 2 they make" in warning["message"] for warning in warnings), warnings


def test_only_the_runs_own_epoch_length_keeps_its_recorded_total(tmp_path: Path) -> None:
    """Steps or other epochs given at resume are counted again; a checkpoint made before manifests recorded the images
    resumes as it did."""
    from engine.runs.resume_length import kept_total

    folder, path = _stopped_run(tmp_path, [8], training={"max_train_steps": None, "num_train_epochs": 2})
    checkpoint = folder.checkpoints / "step-00000008"
    assert kept_total(checkpoint, load_profile(path)) is None  # no "instance_images"
    recorded = {"step": 8, "total_steps": 12, "instance_images": 6, "files": {},
                "profile": load_profile(path).model_dump(mode="json")}
    (checkpoint / "manifest.json").write_text(json.dumps(recorded))
    kept = kept_total(checkpoint, load_profile(path))
    assert kept is not None and (kept.total_steps, kept.instance_images) == (12, 6)
    for told in ("training.num_train_epochs=3", "training.max_train_steps=20"):
        assert kept_total(checkpoint, load_profile(path, [told])) is None


def test_fewer_epochs_than_the_checkpoint_reached_are_refused_before_the_model_loads(tmp_path: Path) -> None:
    """Stopped at step 8 of 2 epochs of 6 images, resumed with `--set training.num_train_epochs=1` (6 steps): refused by
    the trainer only once the model had loaded and the images were cached."""
    import pytest

    from engine.runs.launcher import _prepare
    from engine.runs.resume_length import ResumePastTheEndError

    folder, _ = _epoch_run_stopped_at(tmp_path, 8)
    with pytest.raises(ResumePastTheEndError) as refused:
        _prepare(folder, load_profile(folder.profile, ["training.num_train_epochs=1"]), "latest", None,
                 given_keys=["training.num_train_epochs"])
    assert str(refused.value) == (
        f"the run is at step 8 and training.num_train_epochs is 1, 6 steps of its images (6 an epoch): nothing is left "
        f"to train. To train on, set num_train_epochs to 2 or more (or max_train_steps above 8); to keep the model as it "
        f"is at step 8, export it: `dbtui export {folder.path} --step 8`")
    told = _prepare(folder, load_profile(folder.profile, ["training.num_train_epochs=3"]), "latest", None,
                    given_keys=["training.num_train_epochs"])
    assert told.changed == "training.num_train_epochs: 2 → 3"


def test_fewer_epochs_of_changed_images_are_refused_before_the_model_loads(tmp_path: Path) -> None:
    """Stopped at step 8 of 2 epochs of 6 images, 3 images taken away, resumed with `--set training.num_train_epochs=1`
    (3 steps): the checkpoint's record of an epoch counted 6 images, so the launch let it by and the trainer refused it
    only once the model had loaded and the images were cached. The images there now are counted instead."""
    import pytest

    from engine.runs.launcher import _prepare
    from engine.runs.resume_length import ResumePastTheEndError

    folder, images = _epoch_run_stopped_at(tmp_path, 8)
    for image in sorted(images.glob("zwx_0[1-3].*")):
        image.unlink()
    with pytest.raises(ResumePastTheEndError) as refused:
        _prepare(folder, load_profile(folder.profile, ["training.num_train_epochs=1"]), "latest", None,
                 given_keys=["training.num_train_epochs"])
    assert str(refused.value).startswith(
        "the run is at step 8 and training.num_train_epochs is 1, 3 steps of its images (3 an epoch): nothing is left "
        "to train. To train on, set num_train_epochs to 3 or more")
    told = _prepare(folder, load_profile(folder.profile, ["training.num_train_epochs=3"]), "latest", None,
                    given_keys=["training.num_train_epochs"])
    assert told.changed == "training.num_train_epochs: 2 → 3"
