"""dbtui export builds a checkpoint's model with the settings it was trained with, and into the base model it was
trained on only, and says what stands in its way.

The tests of a trained run share one, trained once for the module in this process (a LoRA of its unet and text encoder,
3 steps, its checkpoint at step 2): each works on its own copy, as it edits the profile and the manifests."""

from __future__ import annotations

import errno
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file, save_file

from engine.events import Warning
from engine.profile import load_profile, save_profile, validate_data
from engine.runs.checkpoints import CheckpointError
from engine.runs.folder import RunFolder
from tests.runs_helpers import run_with_checkpoints, trained_as_by_dbtui_run
from tests.training_helpers import merge, tiny_profile


def _edited(folder: RunFolder, **sections: Any) -> None:
    """RUN/profile.toml with ``sections`` changed, as a user edits it after the run."""
    save_profile(validate_data(merge(load_profile(folder.profile).model_dump(mode="json"), sections)), folder.profile)


def _without_profiles(folder: RunFolder) -> None:
    """Manifests as a dbtui of before they held the profile wrote them."""
    for manifest in folder.checkpoints.glob("step-*/manifest.json"):
        held = json.loads(manifest.read_text())
        del held["profile"]
        manifest.write_text(json.dumps(held))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> RunFolder:
    """The run both kinds of export are asked of: LoRA and merged diffusers, step 2 from its checkpoint, 3 from outputs."""
    return trained_as_by_dbtui_run(tiny_profile(
        tmp_path_factory.mktemp("trained"), optimizer={"learning_rate": 1e-2},
        training={"method": "lora", "train_text_encoder": True, "max_train_steps": 3},
        saving={"every_n_steps": 2, "export": ["lora_diffusers", "diffusers"]}))


def _copy(run: RunFolder, tmp_path: Path, **sections: Any) -> RunFolder:
    """This test's own copy of ``run``, its profile edited by ``sections`` as the test's run was trained with."""
    shutil.copytree(run.path, tmp_path / "runs" / "t")
    folder = RunFolder(tmp_path / "runs" / "t")
    _edited(folder, **sections)
    return folder


def test_an_edited_profile_exports_the_checkpoint_as_it_was_trained(tmp_path: Path, trained: RunFolder) -> None:
    """A LoRA rank edited in RUN/profile.toml failed as "a bug in dbtui" (a shape mismatch); its alpha made a LoRA 4×
    too strong; train_text_encoder turned off dropped the text encoders' trained layers, all without a word."""
    from engine.runs.export import export_checkpoint

    folder = _copy(trained, tmp_path, saving={"export": ["lora_diffusers"]})
    lora = folder.path / "exports" / "step-2" / "lora" / "pytorch_lora_weights.safetensors"
    export_checkpoint(folder.path, 2)
    trained = load_file(lora)
    assert any(key.startswith("text_encoder.") for key in trained)

    _edited(folder, training={"train_text_encoder": False, "lora": {"rank": 4, "alpha": 32.0}})
    events: list[Any] = []
    export_checkpoint(folder.path, 2, emit=events.append)
    again = load_file(lora)
    assert again.keys() == trained.keys() and all(torch.equal(again[key], trained[key]) for key in trained)
    [warning] = [event for event in events if isinstance(event, Warning)]
    assert "training.train_text_encoder: true → false" in warning.message and "training.lora" in warning.message

    _without_profiles(folder)  # the settings then come from RUN/profile.toml, and a mismatch is said as one
    with pytest.raises(CheckpointError, match="step-00000002 does not match the profile's settings: its unet weights"):
        export_checkpoint(folder.path, 2)
    _edited(folder, training={"lora": None})  # its LoRA as trained, its text encoder's said left out: it was dropped
    with pytest.raises(CheckpointError, match="holds its trained text_encoder, and .* says training.train_text_encoder"):
        export_checkpoint(folder.path, 2)
    _edited(folder, training={"method": "full", "lora": None}, saving={"export": ["diffusers"]})
    with pytest.raises(CheckpointError, match='was trained with training.method = "lora", and .* now says "full"'):
        export_checkpoint(folder.path, 2)



def test_a_checkpoint_that_does_not_fit_another_base_model_is_said_so_not_as_other_training_settings(
        tmp_path: Path, trained: RunFolder) -> None:
    """Its weights built with the settings its manifest records, a mismatch can only be the base model RUN/profile.toml
    names: it was said as "another training.lora rank or targets ... put back the settings it was trained with", which
    an edit of the profile's LoRA settings (not read) could never fix."""
    from engine.runs.checkpoints import CheckpointMismatchError
    from engine.runs.export import export_checkpoint

    folder = _copy(trained, tmp_path, saving={"export": ["lora_diffusers"]})
    _without_family(folder)  # the shapes decide where the manifest names no family (test_..._of_another_family)
    _edited(folder, model={"pretrained": "builtin:tiny-sdxl"})
    with pytest.raises(CheckpointMismatchError) as raised:
        export_checkpoint(folder.path, 2)
    said = str(raised.value)
    assert "do not fit the base model builtin:tiny-sdxl that model.pretrained names in" in said
    assert "it was trained from builtin:tiny-sd1" in said and "training.lora" not in said
    # A base of another family (a transformer, where the checkpoint holds a unet) was said "incomplete: use another
    # kept step", which each step would fail alike.
    _edited(folder, model={"pretrained": "builtin:tiny-flux"})
    with pytest.raises(CheckpointMismatchError, match="do not fit the base model builtin:tiny-flux .* it was trained "
                                                      "from builtin:tiny-sd1"):
        export_checkpoint(folder.path, 2)
    _without_profiles(folder)
    with pytest.raises(CheckpointMismatchError, match="holds a trained unet, and the base model builtin:tiny-flux is "
                                                      "Flux.1, whose transformer it has not: write the model"):
        export_checkpoint(folder.path, 2)

def _without_family(folder: RunFolder) -> None:
    """Manifests whose record of the base model names no family, as a dbtui of before it recorded one wrote them."""
    for manifest in folder.checkpoints.glob("step-*/manifest.json"):
        held = json.loads(manifest.read_text())
        del held["base_model"]["family"]
        manifest.write_text(json.dumps(held))


@pytest.mark.parametrize(("base", "named"), [("builtin:tiny-sdxl", "an SDXL model, where they are SD1.x's"),
                                             ("builtin:tiny-flux", "a Flux.1 model, where they are SD1.x's")])
def test_a_lora_exported_onto_a_base_model_of_another_family_is_refused_before_it_loads(
        tmp_path: Path, trained: RunFolder, base: str, named: str, monkeypatch) -> None:
    """An SD1.x LoRA's export with model.pretrained edited to an SDXL model warned "the LoRA files are written all the
    same", then loaded the model and failed: no file was written. The family its manifest records is refused first."""
    import engine.models.loading
    from engine.runs.base_identity import OtherBaseModelError
    from engine.runs.export import export_checkpoint

    folder = _copy(trained, tmp_path, saving={"export": ["lora_diffusers", "lora_kohya"]})
    _edited(folder, model={"pretrained": base})
    monkeypatch.setattr(engine.models.loading, "load_components", lambda *a, **k: pytest.fail("the model was loaded"))
    events: list[Any] = []
    with pytest.raises(OtherBaseModelError, match=f"is another model, {named}: .* write builtin:tiny-sd1 back"):
        export_checkpoint(folder.path, 2, emit=events.append)
    assert not [event for event in events if isinstance(event, Warning)]
    assert not (folder.path / "exports" / "step-2").exists()


def _fine_tune_of(model: Path, into: Path) -> Path:
    """A copy of the diffusers folder ``model`` whose unet weights alone are changed, as a fine-tune changes them:
    its config, file names and file sizes the same, so only the weights' bytes tell the two apart."""
    shutil.copytree(model, into)
    weights = into / "unet" / "diffusion_pytorch_model.safetensors"
    generator = torch.Generator().manual_seed(0)
    tensors = {name: tensor + 1e-3 * torch.randn(tensor.shape, generator=generator, dtype=tensor.dtype)
               for name, tensor in load_file(weights).items()}
    save_file(tensors, weights, metadata={"format": "pt"})  # as diffusers writes it: the header, so the size, alike
    return into


def test_weights_are_merged_only_into_the_base_model_they_were_trained_on(tmp_path: Path, trained: RunFolder,
                                                                          tiny_sd1: Path) -> None:
    """Shapes alone let a LoRA of one model merge silently into another of the same architecture."""
    from engine.runs.base_identity import OtherBaseModelError, base_model_identity
    from engine.runs.export import export_checkpoint

    folder = _copy(trained, tmp_path)
    identity = base_model_identity(tiny_sd1)
    manifest = json.loads((folder.checkpoints / "step-00000002" / "manifest.json").read_text())
    assert manifest["base_model"] == {"pretrained": "builtin:tiny-sd1", "identity": identity,
                                     "prediction_type": "epsilon", "family": "sd1"}
    assert json.loads((folder.outputs / "base_model.json").read_text())["identity"] == identity
    other = _fine_tune_of(tiny_sd1, tmp_path / "fine-tune")
    unet, other_unet = tiny_sd1 / "unet", other / "unet"
    assert (other_unet / "config.json").read_bytes() == (unet / "config.json").read_bytes()
    weights_file = "diffusion_pytorch_model.safetensors"
    assert (other_unet / weights_file).stat().st_size == (unet / weights_file).stat().st_size
    assert identity != base_model_identity(other)  # the same config and file sizes, other weights

    _edited(folder, model={"pretrained": str(other)})
    for step, weights in ((2, "step-00000002's weights"), (3, "the run's final weights in")):  # a checkpoint, outputs
        with pytest.raises(OtherBaseModelError, match=f"{weights}.* were trained on builtin:tiny-sd1, and the base model "
                                                      f"model.pretrained names in .*{re.escape(str(other))}.* write "
                                                      "builtin:tiny-sd1 back as model.pretrained"):
            export_checkpoint(folder.path, step)
    assert not (folder.path / "exports" / "step-2").exists()

    # LoRA files alone hold none of the base model's weights: written as trained, with a word on the previews.
    _edited(folder, saving={"export": ["lora_diffusers", "lora_kohya"]})
    events: list[Any] = []
    assert "lora_kohya" in export_checkpoint(folder.path, 2, emit=events.append)
    [warning] = [event for event in events if isinstance(event, Warning)]
    assert "the LoRA files are written all the same" in warning.message and "previews" in warning.advice
    # What they were trained on, as RUN/outputs record it: `dbtui convert lora-to-kohya` reads its family there.
    assert json.loads((folder.path / "exports" / "step-2" / "base_model.json").read_text()) == manifest["base_model"]

    # A manifest of before dbtui recorded the base model exports as it did.
    held = json.loads((folder.checkpoints / "step-00000002" / "manifest.json").read_text())
    del held["base_model"]
    (folder.checkpoints / "step-00000002" / "manifest.json").write_text(json.dumps(held))
    _edited(folder, saving={"export": ["diffusers"]})
    assert "diffusers" in export_checkpoint(folder.path, 2)


def test_a_checkpoint_folder_without_its_manifest_is_said_incomplete_and_the_step_exported_instead_named(
        tmp_path: Path, monkeypatch) -> None:
    """Said as "has no checkpoint at step 8", and `dbtui export RUN` wrote step 4 without a word."""
    import engine.models.loading
    from engine.runs.export import NoSuchCheckpointError, checkpoint_at, export_checkpoint

    folder, _ = run_with_checkpoints(tmp_path, [4])
    (folder.checkpoints / "step-00000008").mkdir()
    (folder.checkpoints / "step-00000012").mkdir()
    (folder.checkpoints / "step-00000012" / "manifest.json").write_text("garbage")
    for step in (8, 12):
        with pytest.raises(NoSuchCheckpointError, match=f"step-{step:08d} is there but incomplete: its manifest.json is "
                                                        "missing or damaged .*the kept steps are: 4"):
            checkpoint_at(folder, step)

    class Loading(Exception):
        """What follows is not this test's."""

    def resolve(name: str, **options: Any) -> Path:
        raise Loading

    monkeypatch.setattr(engine.models.loading, "resolve_model_folder", resolve)
    events: list[Any] = []
    with pytest.raises(Loading):
        export_checkpoint(folder.path, emit=events.append)
    [warning] = [event for event in events if isinstance(event, Warning)]  # beside the load_model phase's start
    assert warning.message.startswith("exporting step 4, the latest complete checkpoint: ") and "(step 12) is incomplete" in warning.message


def test_an_output_folder_in_the_way_or_read_only_is_said_before_the_model_loads(tmp_path: Path, monkeypatch) -> None:
    """RUN/exports a file was said as 'RUN/exports/step-4' in the way; a read-only RUN/exports/step-4 got "choose an
    output location you can write to", which an export has no option for."""
    import os

    from engine.runs import export
    from engine.runs.file_errors import RunFilesError, run_files_error

    folder, _ = run_with_checkpoints(tmp_path, [4])
    exports = folder.path / "exports"
    exports.write_text("")
    with pytest.raises(RunFilesError, match=f"'{re.escape(str(exports))}' is in the way") as raised:
        export.export_checkpoint(folder.path)
    assert raised.value.advice.endswith("--step 4` writes it")  # nothing written: not "again"
    said = run_files_error(OSError(errno.ENOTDIR, "Not a directory", str(exports / "step-4")), folder.path)
    assert said is not None and str(said).startswith(f"'{exports}' is in the way")

    exports.unlink()
    (exports / "step-4").mkdir(parents=True)
    monkeypatch.setattr(export.os, "access", lambda path, mode: Path(path) != exports / "step-4")  # root writes anywhere
    with pytest.raises(RunFilesError, match="step-4 is read-only") as raised:
        export.export_checkpoint(folder.path)
    assert "rename or remove it for a new one" in raised.value.advice and "chmod -R u+w" in raised.value.advice
    assert os.access(folder.path, os.W_OK)


def test_an_earlier_export_this_user_may_not_list_is_said_not_a_crash(tmp_path: Path, monkeypatch) -> None:
    """RUN/exports/step-4 another user's folder of mode 700 (an earlier export run with sudo): since 393c817 asked
    whether it held an export, listing it raised PermissionError ("This is a bug in dbtui") before the refusal that says
    it is not this user's. Root lists any folder: the refusal is made as the system makes it to another user."""
    from engine.runs import export
    from engine.runs.file_errors import RunFilesError

    folder, _ = run_with_checkpoints(tmp_path, [4])
    target = folder.path / "exports" / "step-4"
    target.mkdir(parents=True)
    listed = Path.iterdir

    def refused(self: Path):
        if self == target:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return listed(self)

    monkeypatch.setattr(Path, "iterdir", refused)
    monkeypatch.setattr(export.os, "access", lambda path, mode: Path(path) != target)
    with pytest.raises(RunFilesError, match="step-4 is read-only \\(or not this user's\\)") as raised:
        export.export_checkpoint(folder.path)
    assert raised.value.advice.endswith("--step 4` writes it")


def test_a_checkpoint_read_through_its_pin_is_named_by_its_own_path_and_a_mismatch_is_typed(tmp_path: Path) -> None:
    from engine.runs.restore_part import restore_part

    pin, checkpoint = tmp_path / "checkpoints" / ".export-step-00000008-x", tmp_path / "checkpoints" / "step-00000008"
    (pin / "unet").mkdir(parents=True)

    class Damaged:
        @classmethod
        def from_pretrained(cls, source, **options):
            raise OSError(f"Error no file named diffusion_pytorch_model.safetensors found in directory {source}.")

        def load_state_dict(self, state):
            raise AssertionError("nothing was read")

    with pytest.raises(CheckpointError) as raised:
        restore_part(Damaged(), "unet", pin, shown=checkpoint)
    assert str(pin) not in str(raised.value) and f"found in directory {checkpoint / 'unet'}" in str(raised.value)

    class OtherShape(Damaged):
        @classmethod
        def from_pretrained(cls, source, **options):
            return torch.nn.Linear(2, 3)

        def load_state_dict(self, state):
            return torch.nn.Linear(2, 2).load_state_dict(state)

    with pytest.raises(CheckpointError, match="step-00000008 does not match the profile's settings: its unet weights"):
        restore_part(OtherShape(), "unet", pin, shown=checkpoint)


def test_export_help_says_the_formats_come_from_the_runs_profile(capsys: pytest.CaptureFixture[str]) -> None:
    from dbtui.cli import main

    with pytest.raises(SystemExit):
        main(["export", "--help"])
    assert "saving.export lists in RUN/profile.toml" in " ".join(capsys.readouterr().out.split())


def test_an_unkept_steps_refusal_names_the_step_the_run_finished_at(tmp_path: Path) -> None:
    """`dbtui export RUN --step 3` of a run finished at 4 (no checkpoint kept there) said "the kept steps are: 2",
    as if the final step could not be exported, while `--step 4` writes it from RUN/outputs."""
    from engine.runs.export import NoSuchCheckpointError, checkpoint_at
    from engine.runs.folder import RunState

    folder, _ = run_with_checkpoints(tmp_path, [2])
    folder.write_state(RunState(pid=1, status="finished", step=4, total_steps=4))
    (folder.outputs / "diffusers").mkdir(parents=True)
    (folder.outputs / "diffusers" / "model_index.json").write_text("{}")  # what `--step 4` builds from
    with pytest.raises(NoSuchCheckpointError, match=r"kept steps are: 2, and 4, where the run finished \(from its outputs\)$"):
        checkpoint_at(folder, 3)


@pytest.mark.parametrize("kept", [[], [2]])
def test_the_finished_step_is_not_offered_where_the_run_wrote_a_single_file_only(tmp_path: Path, kept: list[int]) -> None:
    """A full run exporting only "safetensors", with no checkpoint: `dbtui export RUN` said `--step 4` writes its final
    outputs (and `--step 3` named 4 among the steps to export), and `--step 4` was then refused, the run having written
    no diffusers folder. Both now give that refusal, which names the file and the conversion that makes the formats."""
    from engine.runs.export import NoSuchCheckpointError, checkpoint_at
    from engine.runs.folder import RunState

    folder, _ = run_with_checkpoints(tmp_path, kept)
    folder.write_state(RunState(pid=1, status="finished", step=4, total_steps=4))
    folder.outputs.mkdir(parents=True, exist_ok=True)
    (folder.outputs / "t.safetensors").write_bytes(b"")
    with pytest.raises(NoSuchCheckpointError) as refused:
        checkpoint_at(folder, 3 if kept else None)
    said = str(refused.value)
    assert "--step 4" not in said and "and 4, where the run finished" not in said, said
    assert f"step 4 is where {folder.path} finished, and the run wrote its model as {folder.outputs / 't.safetensors'} " \
           "only, no diffusers folder" in said and "`dbtui convert to-diffusers " in said, said


def test_a_step_a_live_run_has_not_reached_is_said_to_come(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`dbtui export RUN --step 400` of a run training towards 400 said only that no checkpoint was at 400 among the
    kept steps, as of a step lost."""
    from engine.runs.export import NoSuchCheckpointError, checkpoint_at
    from engine.runs.folder import RunFolder, RunState

    folder, _ = run_with_checkpoints(tmp_path, [20, 40])
    folder.write_state(RunState(pid=1, status="running", step=45, total_steps=400))
    monkeypatch.setattr(RunFolder, "is_live", lambda self: True)
    with pytest.raises(NoSuchCheckpointError) as refused:
        checkpoint_at(folder, 400)
    assert str(refused.value).endswith("the kept steps are: 20, 40; the run is still training (step 45 of 400): "
                                       "export step 400 once it has saved or finished it")
    with pytest.raises(NoSuchCheckpointError) as refused:
        checkpoint_at(folder, 30)  # passed: lost, not to come
    assert "still training" not in str(refused.value)
