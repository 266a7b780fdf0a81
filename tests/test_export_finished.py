"""dbtui export of trained tiny runs: a kept checkpoint's outputs equal what a run stopped at that step wrote, and the
step a run finished at, which no checkpoint holds, is built from RUN/outputs in the formats RUN/profile.toml lists now,
equal to an export of a checkpoint kept at the same step.

The runs are trained once for the module, in this process (a LoRA and a full fine-tune, each for 2 steps and for 4
checkpointed every 2, whose checkpoint at step 2 holds the 2-step run's final weights): each test exports from its own
copy of them, as it edits their profiles and damages their checkpoints. The 2-step runs write one format only, so that
the formats their last step is exported in are ones they did not write; the 4-step runs write every format the
checkpoints' exports are asked for."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from dbtui.cli import main
from engine.profile import load_profile
from engine.runs.folder import RunFolder
from tests.runs_helpers import dbtui, profile_file, trained_as_by_dbtui_run

SAVED = {"every_n_steps": 2, "keep_last_n": 3}


def _train(tmp_path: Path, name: str, steps: int, **sections: Any) -> RunFolder:
    """A run of ``steps`` steps; the constant learning rate makes its first steps the same as a shorter run's. Trained
    in this process as `dbtui run`'s trainer trains it, the profile it was started from beside it."""
    sections.setdefault("training", {}).update(max_train_steps=steps)
    return trained_as_by_dbtui_run(load_profile(profile_file(tmp_path / name, optimizer={"learning_rate": 1e-2},
                                                             **sections)))


def _pair(root: Path, short: list[str], long: list[str], **sections: Any) -> tuple[RunFolder, RunFolder]:
    """(a run that finished at step 2 with no checkpoint there, exporting ``short``; one of 4 steps with its checkpoint
    at step 2, exporting ``long``). The formats change what RUN/outputs holds, not the weights trained."""
    return (_train(root, "short", 2, saving={**SAVED, "export": short}, **sections),
            _train(root, "long", 4, saving={**SAVED, "export": long}, **sections))


@pytest.fixture(scope="module")
def lora_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunFolder, RunFolder]:
    return _pair(tmp_path_factory.mktemp("lora"), ["lora_diffusers"], ["lora_diffusers", "lora_kohya"],
                 training={"method": "lora"})


@pytest.fixture(scope="module")
def full_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunFolder, RunFolder]:
    return _pair(tmp_path_factory.mktemp("full"), ["diffusers"], ["diffusers", "safetensors"])


def _copy(run: RunFolder, tmp_path: Path, name: str) -> RunFolder:
    """This test's own copy of a trained run (with the profile it was started from, beside it as before)."""
    shutil.copytree(run.path.parents[1], tmp_path / name)
    return RunFolder(tmp_path / name / "runs" / run.path.name)


def _export(*args: str) -> tuple[int, str]:
    """`dbtui export ARGS` as its own process: (exit status, stdout and stderr), the libraries' log lines included."""
    run = dbtui("export", *args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out, _ = run.communicate(timeout=600)
    return run.returncode, out


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """`dbtui ARGS` through the CLI's entry point in this process: (exit status, what it printed)."""
    code = main(list(args))
    said = capsys.readouterr()
    return code, said.out + said.err


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_full_checkpoint_exports_the_model_a_run_stopped_there_would_have_written(
        tmp_path: Path, full_pair: tuple[RunFolder, RunFolder], capsys: pytest.CaptureFixture[str]) -> None:
    short, long = (_copy(run, tmp_path, name) for run, name in zip(full_pair, ("short", "long")))
    code, out = _cli(capsys, "export", str(long.path))  # the latest kept checkpoint: step 2
    assert code == 0 and "diffusers: " in out, out
    unet = lambda folder: load_file(folder / "unet" / "diffusion_pytorch_model.safetensors")  # noqa: E731
    exported = unet(long.path / "exports" / "step-2" / "diffusers")
    assert _same(exported, unet(short.outputs / "diffusers"))
    assert not _same(exported, unet(long.outputs / "diffusers"))
    assert (long.path / "exports" / "step-2" / "t.safetensors").is_file()


def test_a_lora_checkpoint_exports_its_adapter_and_an_unkept_step_is_named(
        tmp_path: Path, lora_pair: tuple[RunFolder, RunFolder], capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    short, long = (_copy(run, tmp_path, name) for run, name in zip(lora_pair, ("short", "long")))
    code, out = _cli(capsys, "export", "t", "--dir", str(long.path.parent), "--step", "step-00000002")  # as resume --from takes it
    assert code == 0, out
    lora = lambda folder: load_file(folder / "lora" / "pytorch_lora_weights.safetensors")  # noqa: E731
    exported = lora(long.path / "exports" / "step-2")
    assert _same(exported, lora(short.outputs)) and not _same(exported, lora(long.outputs))
    assert (long.path / "exports" / "step-2" / "t-lora-kohya.safetensors").is_file()

    code, out = _cli(capsys, "export", str(long.path), "--step", "3")
    assert code == 2 and "no checkpoint at step 3" in out and "kept steps are: 2" in out, out

    # Where it finished: built from RUN/outputs, which stay. Its own process, whose stderr holds diffusers' log lines.
    code, out = _export(str(long.path), "--step", "4")
    assert code == 0 and "No LoRA keys" not in out, out
    assert _same(lora(long.path / "exports" / "step-4"), lora(long.outputs))
    assert (long.path / "exports" / "step-4" / "t-lora-kohya.safetensors").is_file()

    checkpoint = long.path / "checkpoints" / "step-00000002"
    whole = tmp_path / "whole-step-2"
    shutil.copytree(checkpoint, whole)
    adapter = checkpoint / "lora" / "unet.safetensors"
    adapter.write_bytes(adapter.read_bytes()[:100])
    code, out = _cli(capsys, "export", str(long.path), "--step", "2")
    assert code == 2 and "step-00000002 is damaged: lora/unet.safetensors has 100 bytes where" in out, out
    adapter.unlink()
    code, out = _cli(capsys, "export", str(long.path), "--step", "2")
    assert code == 2 and "step-00000002 is damaged: lora/unet.safetensors is missing" in out, out

    from engine.runs import export

    # A live run's rotation (keep_last_n) removing the checkpoint while the export reads it: the export failed.
    shutil.rmtree(checkpoint)
    shutil.copytree(whole, checkpoint)
    read = export.restore_part

    def rotated_while_read(model, name, files, **named) -> None:
        shutil.rmtree(checkpoint, ignore_errors=True)
        read(model, name, files, **named)

    monkeypatch.setattr(export, "restore_part", rotated_while_read)
    export.export_checkpoint(long.path, 2)
    assert not checkpoint.exists() and _same(lora(long.path / "exports" / "step-2"), exported)
    assert not list(long.checkpoints.glob(".export-*"))  # its hard links go with it

    # Removed during the model load: the export holds it from before the load, and still writes it.
    shutil.copytree(whole, checkpoint)
    monkeypatch.setattr(export, "restore_part", read)
    import engine.training.trainable as trainable

    add_lora_adapters = trainable.add_lora_adapters

    def rotated_while_loading(components, profile) -> None:
        shutil.rmtree(checkpoint)
        add_lora_adapters(components, profile)

    monkeypatch.setattr(trainable, "add_lora_adapters", rotated_while_loading)
    export.export_checkpoint(long.path, 2)
    assert _same(lora(long.path / "exports" / "step-2"), exported) and not list(long.checkpoints.glob(".export-*"))

    # Removed before the export could hold on to it (between its choice and the pin): said as such.
    shutil.copytree(whole, checkpoint)
    monkeypatch.setattr(export, "damage_of", lambda path: shutil.rmtree(checkpoint))
    with pytest.raises(export.NoSuchCheckpointError, match="the checkpoint at step 2 was removed while it was read"):
        export.export_checkpoint(long.path, 2)


def _formats(run: Path, formats: list[str]) -> None:
    """saving.export edited in RUN/profile.toml, as the export's help says to choose its formats."""
    profile = run / "profile.toml"
    listed = ", ".join(f'"{fmt}"' for fmt in formats)
    profile.write_text(re.sub(r"export = \[[^\]]*\]", f"export = [{listed}]", profile.read_text()))


def _files(folder: Path) -> dict[str, float]:
    return {str(path.relative_to(folder)): path.stat().st_mtime for path in folder.rglob("*")}


def test_a_finished_lora_runs_last_step_exports_in_new_formats_as_its_kept_checkpoint_would(
        tmp_path: Path, lora_pair: tuple[RunFolder, RunFolder], capsys: pytest.CaptureFixture[str]) -> None:
    finished, kept = (_copy(run, tmp_path, name) for run, name in zip(lora_pair, ("finished", "kept")))
    assert not (finished.checkpoints / "step-00000002").exists() and (kept.checkpoints / "step-00000002").is_dir()
    outputs = _files(finished.outputs)
    assert "t-lora-kohya.safetensors" not in outputs and "diffusers" not in outputs, outputs  # formats new to it
    for run in (finished, kept):
        _formats(run.path, ["lora_kohya", "diffusers"])
        code, out = _cli(capsys, "export", str(run.path), "--step", "2")
        assert code == 0, out
    assert _files(finished.outputs) == outputs  # only read
    ours, theirs = finished.path / "exports" / "step-2", kept.path / "exports" / "step-2"
    lora = "lora/pytorch_lora_weights.safetensors"
    assert _same(load_file(ours / lora), load_file(finished.outputs / lora))
    assert _same(load_file(ours / lora), load_file(theirs / lora))
    for name in ("t-lora-kohya.safetensors", "diffusers/unet/diffusion_pytorch_model.safetensors",
                 "diffusers/text_encoder/model.safetensors"):
        assert _same(load_file(ours / name), load_file(theirs / name)), name


def test_a_finished_full_runs_last_step_exports_from_its_diffusers_folder_else_the_conversion_is_named(
        tmp_path: Path, full_pair: tuple[RunFolder, RunFolder], capsys: pytest.CaptureFixture[str]) -> None:
    finished, kept = (_copy(run, tmp_path, name) for run, name in zip(full_pair, ("finished", "kept")))
    assert not (finished.outputs / "t.safetensors").exists()  # a format new to it
    for run in (finished, kept):
        _formats(run.path, ["safetensors", "diffusers"])
        code, out = _cli(capsys, "export", str(run.path), "--step", "2")
        assert code == 0, out
    ours, theirs = finished.path / "exports" / "step-2", kept.path / "exports" / "step-2"
    unet = "diffusers/unet/diffusion_pytorch_model.safetensors"
    assert _same(load_file(ours / unet), load_file(finished.outputs / unet))
    assert _same(load_file(ours / unet), load_file(theirs / unet))
    assert _same(load_file(ours / "t.safetensors"), load_file(theirs / "t.safetensors"))

    # A run that wrote a single file only: no diffusers folder to build from, and the conversion that makes one named.
    (ours / "diffusers").rename(tmp_path / "set-aside")
    _formats(finished.path, ["safetensors"])
    assert _cli(capsys, "export", str(finished.path), "--step", "2")[0] == 0
    (ours / "t.safetensors").rename(finished.outputs / "t.safetensors")
    (finished.outputs / "diffusers").rename(tmp_path / "outputs-diffusers")
    _formats(finished.path, ["diffusers"])
    code, out = _cli(capsys, "export", str(finished.path), "--step", "2")
    said = " ".join(out.split())
    command = said[said.index("`dbtui convert") + 1:said.index("` writes it")]
    assert code == 2 and "t.safetensors only, no diffusers folder" in said, out
    assert command.startswith(f"dbtui convert to-diffusers {finished.outputs / 't.safetensors'} {ours / 'diffusers'} --config "), out
    code, out = _cli(capsys, *shlex.split(command)[1:])
    assert code == 0, out
    converted = "diffusers/unet/diffusion_pytorch_model.safetensors"
    assert _same(load_file(ours / converted), load_file(tmp_path / "outputs-diffusers" / "unet" / "diffusion_pytorch_model.safetensors"))


def test_a_finished_runs_last_step_on_a_base_model_it_does_not_fit_is_said_so(
        tmp_path: Path, lora_pair: tuple[RunFolder, RunFolder], full_pair: tuple[RunFolder, RunFolder]) -> None:
    """model.pretrained edited in RUN/profile.toml to a model the final weights do not fit: a LoRA's failed as 'a bug in
    dbtui' (diffusers' size mismatch), a full fine-tune's said to put back the training settings, which are not read."""
    from engine.runs.base_identity import OtherBaseModelError
    from engine.runs.checkpoints import CheckpointMismatchError
    from engine.runs.export import export_checkpoint

    for method, (finished, _) in (("lora", lora_pair), ("full", full_pair)):
        run = _copy(finished, tmp_path, method)  # finished at step 2, with no checkpoint there
        _formats(run.path, ["diffusers"])
        profile = run.profile
        profile.write_text(profile.read_text().replace('"builtin:tiny-sd1"', '"builtin:tiny-sdxl"'))
        with pytest.raises(OtherBaseModelError) as other:  # told by the base model's record, before it loads
            export_checkpoint(run.path, 2)
        assert "were trained on builtin:tiny-sd1, and the base model model.pretrained names in" in str(other.value)
        (run.outputs / "base_model.json").unlink()  # outputs of before the record: told once the weights do not fit
        with pytest.raises(CheckpointMismatchError) as raised:
            export_checkpoint(run.path, 2)
        said = str(raised.value)
        assert "do not fit the base model builtin:tiny-sdxl that model.pretrained names in" in said, said
        assert said.startswith(f"the run's final weights in {run.outputs}") and "checkpoint" not in said, said
        assert "it was trained from builtin:tiny-sd1" in said and "training.lora" not in said, said
        # A base of another family (Flux.1's transformer where a unet trained): 'the transformer has no LoRA adapter to
        # save' once loaded, or 'incomplete ... use another kept step', which none is.
        profile.write_text(profile.read_text().replace('"builtin:tiny-sdxl"', '"builtin:tiny-flux"'))
        with pytest.raises(CheckpointMismatchError, match="do not fit the base model builtin:tiny-flux .* it was trained "
                                                          "from builtin:tiny-sd1"):
            export_checkpoint(run.path, 2)


def test_a_finished_runs_last_step_exported_with_an_edited_profile_names_where_its_settings_are_read(
        tmp_path: Path, lora_pair: tuple[RunFolder, RunFolder]) -> None:
    """The warning of settings edited since (read from RUN/outputs/profile.toml) spoke of 'the checkpoint' and 'its
    manifest.json', where the step has no checkpoint, to send the user looking for one."""
    from engine.events import Warning
    from engine.runs.export import export_checkpoint

    run = _copy(lora_pair[0], tmp_path, "lora")  # finished at step 2, with no checkpoint there
    _formats(run.path, ["lora_diffusers"])
    run.profile.write_text(run.profile.read_text() + "\n[training.lora]\nrank = 4\n")
    said: list[str] = []
    export_checkpoint(run.path, 2, lambda event: said.extend([event.message, event.advice]) if isinstance(event, Warning) else None)
    text = " ".join(said)
    assert "training.lora.rank: 8 → 4" in text and str(run.outputs / "profile.toml") in text, text
    assert "checkpoint" not in text and "manifest.json" not in text, text


def test_a_finished_full_runs_last_step_kept_in_fp16_exported_in_fp32_says_its_weights_were_rounded(tmp_path: Path) -> None:
    """Saved with saving.unet_half and exported after switching it off, the export wrote fp32 files of the fp16 weights
    in RUN/outputs without a word, as if they held the weights as trained."""
    from engine.events import Warning
    from engine.runs.export import export_checkpoint

    run = _train(tmp_path, "half", 4, saving={**SAVED, "unet_half": True, "export": ["diffusers"]})
    run.profile.write_text(run.profile.read_text().replace("unet_half = true", "unet_half = false"))
    said: list[Warning] = []
    export_checkpoint(run.path, 4, lambda event: said.append(event) if isinstance(event, Warning) else None)
    text = " ".join(f"{w.message} {w.advice}" for w in said)
    assert "fp16-rounded" in text and "step-00000002" in text, text
    unet = load_file(run.path / "exports" / "step-4" / "diffusers" / "unet" / "diffusion_pytorch_model.safetensors")
    assert all(t.dtype == torch.float32 and torch.equal(t, t.half().float()) for t in unet.values())


def test_the_rounded_weights_warning_names_only_complete_checkpoints(tmp_path: Path) -> None:
    """A save cut short (step-N.partial) was named among the checkpoints to export the weights as trained from, which
    `dbtui export RUN --step N` then refused."""
    from engine.runs.export_finished import _half_outputs_warning
    from engine.runs.folder import RunFolder

    folder = RunFolder(tmp_path / "run").create()
    (folder.checkpoints / "step-00000002").mkdir(parents=True)
    (folder.checkpoints / "step-00000002" / "manifest.json").write_text('{"step": 2}')
    (folder.checkpoints / "step-00000003.partial").mkdir()
    warning = _half_outputs_warning(folder, folder.outputs / "diffusers", {})
    assert "step-00000002" in warning.advice and "partial" not in warning.advice, warning.advice


def test_the_rounded_weights_warning_is_not_given_for_weights_trained_in_bf16(tmp_path: Path) -> None:
    """Said for a run with bf16 weights too, whose every value fp16 holds (within 3e-8 below 6.1e-5): the export holds
    the weights as trained. Asked for on a machine without bf16, they trained in fp32 and the warning stands."""
    import json

    from engine.runs.export_finished import _half_outputs_warning
    from engine.runs.folder import RunFolder

    folder = RunFolder(tmp_path / "run").create()
    trained = {"profile": {"precision": {"mixed_precision": "bf16", "bf16_weights": True}}}
    for bf16, warned in ((True, False), (False, True)):
        started = {"event": "run_started", "hardware": {"gpus": [{"name": "GPU", "bf16": bf16}]}}
        folder.events.write_text(json.dumps(started) + "\n")
        assert (_half_outputs_warning(folder, folder.outputs / "diffusers", trained) is not None) == warned, bf16
    assert _half_outputs_warning(folder, folder.outputs / "diffusers", {"profile": {}}) is not None


def test_a_finished_full_run_with_both_single_files_is_converted_from_its_safetensors_not_its_pickle(tmp_path: Path) -> None:
    """With NAME.ckpt and NAME.safetensors beside each other the advice named the .ckpt (first by name), a pickle
    the README says to avoid, as the model's only file."""
    from types import SimpleNamespace

    from engine.runs.export_finished import FinishedOutputsError, _source
    from tests.training_helpers import tiny_profile

    outputs = tmp_path / "run" / "outputs"
    outputs.mkdir(parents=True)
    for name in ("t.ckpt", "t.safetensors", "t.previous.safetensors"):
        (outputs / name).write_text("weights")
    folder = SimpleNamespace(path=tmp_path / "run", outputs=outputs, profile=tmp_path / "run" / "profile.toml")
    with pytest.raises(FinishedOutputsError) as refused:
        _source(folder, tiny_profile(tmp_path), tmp_path / "run" / "exports" / "step-2", 2)  # type: ignore[arg-type]
    assert f"as {outputs / 't.safetensors'} and {outputs / 't.ckpt'} only, no diffusers folder" in str(refused.value)
    assert f"to-diffusers {outputs / 't.safetensors'} " in str(refused.value)
