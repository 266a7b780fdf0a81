"""What to give a converter instead of a dbtui run folder, or one of its checkpoints: the run's outputs, or an
export of the checkpoint (a checkpoint holds training state, not a model or a LoRA in a form others load)."""

from __future__ import annotations

from pathlib import Path

from engine.convert.lora_export import is_kohya_file


def run_folder_hint(folder: Path, wanted: str) -> str | None:
    """The advice for ``folder`` when it is a run folder or (a part of) one of its checkpoints, else None.
    ``wanted``: "model" or "LoRA", what the converter reads."""
    if _is_run_folder(folder):
        if wanted == "model" and _lora_alone(folder / "outputs"):
            return (f"{folder} is a dbtui run folder, not a model: it trained a LoRA, in {folder / 'outputs' / 'lora'}, "
                    "and wrote no model (its saving.export lists LoRA formats alone); give the model it trained from, "
                    f"or add \"diffusers\" to saving.export in {folder / 'profile.toml'}: then `dbtui export {folder} "
                    "--step N` writes a kept step's model")
        return (f"{folder} is a dbtui run folder, not a {wanted}: the {wanted} it finished with is in "
                f"{_finished(folder / 'outputs', wanted)}, and `dbtui export {folder} --step N` writes a kept step's")
    for checkpoint in (folder, folder.parent):
        if (checkpoint / "manifest.json").is_file() and checkpoint.parent.name == "checkpoints":
            run, step = checkpoint.parent.parent, checkpoint.name.removeprefix("step-").lstrip("0") or "0"
            return (f"{folder} is (part of) a training checkpoint, not a {wanted}: `dbtui export {run} --step {step}` "
                    f"writes its {wanted} into {run / 'exports' / f'step-{step}'}")
    return None


def _finished(outputs: Path, wanted: str) -> Path:
    """Where a run's finished ``wanted`` is in ``outputs``. A model is outputs/diffusers, or, where saving.export
    asked for single files alone (no diffusers folder is written then), its single file."""
    if wanted != "model":
        return outputs / "lora"
    if not (outputs / "diffusers").is_dir():
        singles = _single_files(outputs)
        if singles:
            return singles[0]
    return outputs / "diffusers"


def _single_files(outputs: Path) -> list[Path]:
    """The single-file models in a run's ``outputs``, not their previous copies nor a LoRA's kohya file."""
    return sorted(path for suffix in (".safetensors", ".ckpt") for path in outputs.glob(f"*{suffix}")
                  if not path.stem.endswith(".previous") and not is_kohya_file(path))


def _lora_alone(outputs: Path) -> bool:
    """Whether a run's ``outputs`` hold its LoRA and no model (a LoRA run's saving.export of LoRA formats alone)."""
    return (outputs / "lora").is_dir() and not (outputs / "diffusers").is_dir() and not _single_files(outputs)


def _is_run_folder(folder: Path) -> bool:
    """A checkpoints/ folder beside dbtui's own run files, or holding one of its checkpoints: a bare checkpoints/ is
    also ComfyUI's models/ folder (its full-model files), where users keep their LoRAs too."""
    checkpoints = folder / "checkpoints"
    if not checkpoints.is_dir():
        return False
    if any((folder / name).is_file() for name in ("profile.toml", "events.jsonl", "state.json")):
        return True
    try:
        return any((entry / "manifest.json").is_file() for entry in checkpoints.iterdir())
    except OSError:  # unreadable: nothing says it is a run's
        return False
