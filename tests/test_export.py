"""dbtui export: its output folders, its choice and pin of a checkpoint, and its refusals; the exports of trained runs
(a kept checkpoint equal to a run stopped at its step) are in test_export_finished.py, which trains them once."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

from engine.runs.folder import RunFolder
from tests.runs_helpers import profile_file


def test_writing_an_output_again_keeps_one_previous_copy_not_one_per_write(tmp_path: Path) -> None:
    from engine.training.outputs import atomic_folder

    target = tmp_path / "exports" / "step-2" / "lora"
    for version in ("first", "second", "third"):
        atomic_folder(target, lambda folder, version=version: (folder.mkdir(), (folder / "w.txt").write_text(version)))
    assert (target / "w.txt").read_text() == "third"
    assert (target.with_name("lora.previous") / "w.txt").read_text() == "second"
    assert sorted(p.name for p in target.parent.iterdir()) == ["lora", "lora.previous"]



def test_two_writes_of_one_output_at_once_each_keep_their_own_temporary_folder(tmp_path: Path) -> None:
    """Two `dbtui export RUN --step N` at once: the second removed the first's half-written folder (one fixed name)."""
    from engine.training.outputs import atomic_folder

    target = tmp_path / "exports" / "step-2" / "lora"

    def first(folder: Path) -> None:
        folder.mkdir()
        (folder / "w.txt").write_text("first")
        atomic_folder(target, lambda other: (other.mkdir(), (other / "w.txt").write_text("second")))  # started meanwhile
        assert (folder / "w.txt").read_text() == "first"

    atomic_folder(target, first)
    assert (target / "w.txt").read_text() == "first" and (target.with_name("lora.previous") / "w.txt").read_text() == "second"
    assert sorted(p.name for p in target.parent.iterdir()) == ["lora", "lora.previous"]


def _untouched_for(folder: Path, seconds: float) -> None:
    import os
    import time

    then = time.time() - seconds
    for path in [folder, *folder.rglob("*")]:
        os.utime(path, (then, then))


def test_temporary_folders_a_killed_write_left_are_removed_once_a_day_old(tmp_path: Path) -> None:
    from engine.convert.partials import STALE_PARTIAL_S
    from engine.training.outputs import atomic_folder

    target = tmp_path / "lora"
    old, legacy, young = (tmp_path / name for name in (".lora.0badf00d.partial", ".lora.partial", ".lora.1234abcd.partial"))
    for folder in (old, legacy, young):
        (folder / "unet").mkdir(parents=True)
    for folder in (old, legacy):
        _untouched_for(folder, STALE_PARTIAL_S + 60)
    atomic_folder(target, lambda folder: folder.mkdir())
    assert sorted(p.name for p in tmp_path.iterdir()) == [young.name, "lora"]  # the young one may be being written


def test_a_killed_writes_temporary_folder_is_removed_once_idle_when_its_process_is_gone(tmp_path: Path) -> None:
    """Kept for a day, it held a second full pipeline's room (~7 GB for SDXL) for a re-export soon after a kill; but
    one being written, whose pid is another container's that shares the host name, was removed at once."""
    import os
    import subprocess

    from engine.convert.partials import DEAD_WRITER_IDLE_S, THIS_HOST
    from engine.training.outputs import atomic_folder

    gone = subprocess.Popen(["true"])
    gone.wait()
    target = tmp_path / "diffusers"
    dead, live, elsewhere, writing = (tmp_path / f".diffusers.{writer}.partial" for writer in (
        f"{THIS_HOST}.{gone.pid}.0badf00d", f"{THIS_HOST}.{os.getpid()}.0badf00d", f"other-machine.{gone.pid}.0badf00d",
        f"{THIS_HOST}.{gone.pid}.1badf00d"))
    for folder in (dead, live, elsewhere, writing):
        (folder / "unet").mkdir(parents=True)
        _untouched_for(folder, DEAD_WRITER_IDLE_S + 60)
    (writing / "unet" / "weights.safetensors").write_text("being written")
    atomic_folder(target, lambda folder: folder.mkdir())
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, elsewhere.name, writing.name, "diffusers"])


def test_two_exports_finishing_at_once_leave_the_first_output_and_no_temporary_folder(tmp_path: Path,
                                                                                      monkeypatch) -> None:
    """The second's rename met the first's folder (ENOTEMPTY): a raw OSError, and its temporary folder stayed."""
    import os

    from engine.training.outputs import WrittenMeanwhileError, atomic_folder

    target = tmp_path / "step-2" / "lora"
    rename = os.replace

    def other_finishes_first(source, destination) -> None:
        monkeypatch.setattr(os, "replace", rename)
        atomic_folder(target, lambda other: (other.mkdir(), (other / "w.txt").write_text("other")))
        rename(source, destination)

    monkeypatch.setattr(os, "replace", other_finishes_first)
    with pytest.raises(WrittenMeanwhileError, match="another export of the same output that finished at the same"):
        atomic_folder(target, lambda folder: (folder.mkdir(), (folder / "w.txt").write_text("this")))
    assert (target / "w.txt").read_text() == "other" and [p.name for p in target.parent.iterdir()] == ["lora"]


def test_an_output_folders_weights_get_the_usual_permissions_not_safetensors_owner_only(tmp_path: Path) -> None:
    """A second user's WebUI, or `dbtui export` as another user, could not read the trained model."""
    from safetensors.torch import save_file

    from engine.convert._files import FILE_MODE
    from engine.training.outputs import atomic_folder

    def write(folder: Path) -> None:
        (folder / "unet").mkdir(parents=True)
        save_file({"w": torch.zeros(2)}, folder / "unet" / "diffusion_pytorch_model.safetensors")

    target = atomic_folder(tmp_path / "diffusers", write)
    assert (target / "unet" / "diffusion_pytorch_model.safetensors").stat().st_mode & 0o777 == FILE_MODE


def test_a_single_file_output_written_again_keeps_one_previous_copy_with_its_extension(tmp_path: Path) -> None:
    from engine.training.outputs import keep_previous

    target = tmp_path / "person.safetensors"
    for version in ("first", "second", "third"):
        keep_previous(target)
        target.write_text(version)
    assert target.read_text() == "third" and (tmp_path / "person.previous.safetensors").read_text() == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["person.previous.safetensors", "person.safetensors"]



def test_a_single_file_kept_as_previous_takes_its_yaml_along_once_for_every_format_of_its_name(tmp_path: Path) -> None:
    """The SD2.x-v .yaml stayed beside the new files, and AUTOMATIC1111 read it for a model of another kind."""
    from engine.training.outputs import keep_previous

    files = [tmp_path / "person.safetensors", tmp_path / "person.ckpt"]
    for path in files + [tmp_path / "person.yaml"]:
        path.write_text("v model")
    keep_previous(*files)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["person.previous.ckpt", "person.previous.safetensors", "person.previous.yaml"]
    for path in files:
        path.write_text("epsilon model")  # no .yaml of its own
    keep_previous(*files)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["person.previous.ckpt", "person.previous.safetensors"]

def test_an_export_says_where_the_final_outputs_are_and_that_a_moved_base_model_is_needed(tmp_path: Path) -> None:
    from engine.runs.export import BaseModelGoneError, NoSuchCheckpointError, _check_base_model, checkpoint_at
    from engine.runs.folder import RunState

    folder = RunFolder(tmp_path / "run")
    folder.path.mkdir()
    folder.write_state(RunState(pid=1, status="finished", step=10, total_steps=10))
    with pytest.raises(NoSuchCheckpointError, match=re.escape(f"its final outputs (step 10) are in {folder.outputs}")):
        checkpoint_at(folder, None)
    kept = folder.checkpoints / "step-00000004"
    kept.mkdir(parents=True)
    (kept / "manifest.json").write_text('{"step": 4}')
    aside = folder.path / "checkpoints-set-aside" / "20261204-061457" / "step-00000008"
    aside.mkdir(parents=True)
    with pytest.raises(NoSuchCheckpointError, match=f"step 8 was set aside by a resume from an earlier step: it is in {re.escape(str(aside))}"):
        checkpoint_at(folder, 8)
    # The step it finished at exports from its outputs: "the kept steps are: 4" left it out.
    with pytest.raises(NoSuchCheckpointError, match="the kept steps are: 4, and 10, where the run finished"):
        checkpoint_at(folder, 6)
    from engine.profile.io import load_profile

    moved = load_profile(profile_file(tmp_path), [f"model.pretrained={tmp_path / 'base-moved'}"])
    with pytest.raises(BaseModelGoneError, match=f"does not exist on this machine.*new place in {re.escape(str(folder.profile))}"):
        _check_base_model(moved, folder, None)
    _check_base_model(load_profile(profile_file(tmp_path), ["model.pretrained=builtin:tiny-sd1"]), folder, None)


def test_an_export_keeps_the_runs_converted_base(tmp_path: Path, monkeypatch) -> None:
    """`dbtui export RUN` deleted and converted again the run's base wherever its note differed, a live trainer's
    too: it resolves the base as the run's own, which is kept."""
    import engine.models.loading
    from engine.runs.export import export_checkpoint

    folder = RunFolder(tmp_path / "run")
    (folder.checkpoints / "step-00000004").mkdir(parents=True)
    (folder.checkpoints / "step-00000004" / "manifest.json").write_text('{"step": 4}')
    shutil.copyfile(profile_file(tmp_path), folder.profile)
    asked: dict[str, Any] = {}

    class Asked(Exception):
        """What follows is not this test's."""

    def resolve(name: str, **options: Any) -> Path:
        asked.update(options)
        raise Asked

    monkeypatch.setattr(engine.models.loading, "resolve_model_folder", resolve)
    with pytest.raises(Asked):
        export_checkpoint(folder.path)
    assert asked["work_dir"] == folder.path / "model" and asked["run_base"] is True


@pytest.mark.parametrize("ends", [RuntimeError, KeyboardInterrupt])
def test_an_export_pins_its_checkpoint_before_the_base_model_loads_and_lets_go_however_it_ends(
        ends: type[BaseException], tmp_path: Path, monkeypatch) -> None:
    """It pinned the checkpoint only after the whole base model had loaded: a live run's rotation (every_n_steps=3,
    keep_last_n=1) removed it first in 3 exports of 4 ("the checkpoint at step N was removed while it was read")."""
    import engine.models.loading
    from safetensors.torch import load

    from engine.runs.export import export_checkpoint
    from tests.runs_helpers import run_with_checkpoints

    folder, _ = run_with_checkpoints(tmp_path, [3])
    checkpoint = folder.checkpoints / "step-00000003"
    held: list[bytes] = []

    def rotated_while_loading(*args: Any, **kwargs: Any) -> None:
        shutil.rmtree(checkpoint)  # the live run's next checkpoint, and its rotation, during the load's minutes
        held.extend(pinned.read_bytes() for pinned in folder.checkpoints.glob(".export-*/model.safetensors"))
        raise ends("what follows is not this test's")

    monkeypatch.setattr(engine.models.loading, "resolve_model_folder", lambda name, **options: tmp_path)
    monkeypatch.setattr(engine.models.loading, "load_components", rotated_while_loading)
    with pytest.raises(ends):
        export_checkpoint(folder.path)
    [weights] = held  # the export still holds the removed checkpoint's files
    assert load(weights)["step"].item() == 3
    assert not list(folder.checkpoints.glob(".export-*"))  # the pin goes with the export, whatever ended it


def test_the_export_phase_names_the_lora_a_lora_run_always_writes(tmp_path: Path) -> None:
    """A LoRA run asked for lora_kohya (or diffusers) writes its diffusers LoRA too, which its log left out:
    "[export] started diffusers" above lora_diffusers and diffusers."""
    from types import SimpleNamespace

    from engine.events import PhaseStarted
    from engine.training.outputs import save_outputs
    from tests.training_helpers import tiny_profile

    family = SimpleNamespace(export_lora=lambda folder, unet, encoders: folder.mkdir(),
                             export_lora_kohya=lambda lora, target, components, emit: target.write_bytes(b""))
    events: list[Any] = []
    profile = tiny_profile(tmp_path, training={"method": "lora"}, saving={"export": ["lora_kohya"]})
    outputs = save_outputs(profile, SimpleNamespace(family=family), None, None, tmp_path / "out", events.append)
    [started] = [event for event in events if isinstance(event, PhaseStarted)]
    assert started.description == "lora_diffusers, lora_kohya" and started.total == 2 and set(outputs) == {"lora_diffusers", "lora_kohya"}


def test_an_export_refuses_a_format_the_runs_family_cannot_take_before_the_base_model_loads(tmp_path: Path,
                                                                                              monkeypatch) -> None:
    """`dbtui export` of a Flux run whose RUN/profile.toml lists "safetensors" (its --help says to edit that list)
    loaded the base, wrote the whole merged diffusers folder (gigabytes for Flux.1), then failed on the single file;
    it now says which format the family refuses, in which file, before anything loads or is written."""
    import engine.models.loading
    from engine.profile import load_profile, save_profile, validate_data
    from engine.runs.export import ExportFormatError, export_checkpoint
    from tests.runs_helpers import run_with_checkpoints
    from tests.training_helpers import merge

    folder, _ = run_with_checkpoints(tmp_path, [2])
    edited = {"model": {"pretrained": "builtin:tiny-flux"}, "saving": {"export": ["diffusers", "safetensors"]}}
    save_profile(validate_data(merge(load_profile(folder.profile).model_dump(mode="json"), edited)), folder.profile)

    def loaded(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the base model loaded before the formats were checked")

    monkeypatch.setattr(engine.models.loading, "resolve_model_folder", loaded)
    with pytest.raises(ExportFormatError, match=f"{re.escape(str(folder.profile))}: saving.export lists safetensors.*"
                                                "keep \"diffusers\""):
        export_checkpoint(folder.path)
    assert not (folder.path / "exports").exists()


def test_an_export_refuses_a_format_the_weights_family_cannot_take_before_a_hub_model_downloads(tmp_path: Path,
                                                                                                  monkeypatch) -> None:
    """A Flux run from a hub id not downloaded here, "safetensors" added to RUN/profile.toml's saving.export since: the
    id's name only guessed Flux, so the export went on to download and load the base model (tens of GB), and refused
    the format only then. The checkpoint's trained transformer says Flux: refused before anything loads."""
    import engine.models.loading
    from engine.profile import load_profile, save_profile, validate_data
    from engine.runs.export import ExportFormatError, export_checkpoint
    from tests.runs_helpers import run_with_checkpoints
    from tests.training_helpers import merge

    folder, _ = run_with_checkpoints(tmp_path, [2])
    (folder.checkpoints / "step-00000002" / "transformer").mkdir()
    edited = {"model": {"pretrained": "someone/flux-dev-not-downloaded"}, "saving": {"export": ["diffusers", "safetensors"]}}
    save_profile(validate_data(merge(load_profile(folder.profile).model_dump(mode="json"), edited)), folder.profile)

    def loaded(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the base model was fetched before the formats were checked")

    monkeypatch.setattr(engine.models.loading, "resolve_model_folder", loaded)
    with pytest.raises(ExportFormatError, match=f"{re.escape(str(folder.profile))}: saving.export lists safetensors.*"
                                                "as a Flux.*model"):
        export_checkpoint(folder.path)
    assert not (folder.path / "exports").exists()


def test_an_export_refusal_says_again_only_where_an_earlier_export_wrote(tmp_path: Path, monkeypatch) -> None:
    """A Flux run's export refused for "safetensors" ended "then `dbtui export … --step 2` writes it again" though
    nothing had been written: "again" now only where RUN/exports/step-2 holds an earlier export."""
    import engine.models.loading
    from engine.profile import load_profile, save_profile, validate_data
    from engine.runs.export import ExportFormatError, export_checkpoint
    from tests.runs_helpers import run_with_checkpoints
    from tests.training_helpers import merge

    folder, _ = run_with_checkpoints(tmp_path, [2])
    edited = {"model": {"pretrained": "builtin:tiny-flux"}, "saving": {"export": ["diffusers", "safetensors"]}}
    save_profile(validate_data(merge(load_profile(folder.profile).model_dump(mode="json"), edited)), folder.profile)
    monkeypatch.setattr(engine.models.loading, "resolve_model_folder", lambda *args, **kwargs: None)
    with pytest.raises(ExportFormatError) as first:
        export_checkpoint(folder.path)
    assert str(first.value).endswith(f"then `dbtui export {folder.path} --step 2` writes it")
    earlier = folder.path / "exports" / "step-2"
    earlier.mkdir(parents=True)
    (earlier / "model_index.json").write_text("{}")
    with pytest.raises(ExportFormatError) as second:
        export_checkpoint(folder.path)
    assert str(second.value).endswith(f"then `dbtui export {folder.path} --step 2` writes it again")
