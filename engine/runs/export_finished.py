"""``dbtui export RUN --step N`` at the step where the run finished, which no checkpoint may hold.

The run's final weights are in RUN/outputs: its LoRA folder, or its diffusers folder. The export reads them into the
base model, as an export of a checkpoint reads the checkpoint's, and writes the formats RUN/profile.toml's
saving.export lists into RUN/exports/step-N/ (RUN/outputs is only read). A full fine-tune that wrote single files
only has no weights to read in that way: the refusal names the conversion that makes its other formats.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.errors import DbtuiError
from engine.events import Event, Warning
from engine.runs.checkpoints import CheckpointMismatchError, complete_checkpoints
from engine.runs.export_settings import base_model_mismatch, export_settings
from engine.runs.folder import RunFolder
from engine.runs.last_events import run_starts
from engine.runs.restore_part import restore_part

LORA_FILE = "pytorch_lora_weights.safetensors"


class FinishedOutputsError(DbtuiError):
    """The run's outputs lack the weights an export of the step it finished at is built from."""


def export_finished(folder: RunFolder, step: int, emit: Callable[[Event], None]) -> dict[str, str]:
    """Write the profile's export formats of the model the run ended with (at ``step``); returns {format: path}."""
    from engine.runs.export import build_export, export_again, family_of_weights
    from engine.runs.stored_profile import run_profile

    trained = _trained(folder)
    record = str(folder.outputs / "profile.toml")
    profile = export_settings(run_profile(folder), trained, folder.outputs, folder.profile, emit,
                              weights="the run's final model", record=record)
    target = folder.path / "exports" / f"step-{step}"
    source = _source(folder, profile, target, step)
    half_kept = trained.get("profile", {}).get("saving", {}).get("unet_half")
    if profile.training.method == "full" and half_kept and not profile.saving.unet_half:
        warning = _half_outputs_warning(folder, source, trained)
        if warning is not None:
            emit(warning)
    again = export_again(folder, step, target)
    read = _lora_restore if profile.training.method == "lora" else _full_restore

    def restore(components: Any) -> list[Any] | None:
        try:
            return read(components, profile, source)
        except CheckpointMismatchError as error:  # the trained settings build the model: only the base can differ
            raise base_model_mismatch(error, trained, source, profile, folder.profile, record=record,
                                      weights=f"the run's final weights in {source}") from None

    from engine.runs.base_identity import read_record

    return build_export(folder, profile, target, again, restore, emit,
                        trained_on=(read_record(folder.outputs), f"the run's final weights in {source}"),
                        trained_family=family_of_weights(_holds_part(source)))


def _holds_part(source: Path) -> Callable[[str], bool]:
    """Whether the final weights in ``source`` hold the part ``name``: a diffusers folder's sub-folder, or a LoRA file's
    keys of it ("transformer.…"): a Flux LoRA, whose record names no family, was let load into an SD model."""
    if source.name != "lora":
        return lambda name: (source / name).is_dir()
    from safetensors import SafetensorError

    from engine.support.safetensors_header import read_header

    try:
        parts = {key.split(".", 1)[0] for key in read_header(source / LORA_FILE).shapes}
    except (OSError, SafetensorError):  # a damaged file: the load says so, naming it
        return lambda name: False
    return parts.__contains__


def finished_refusal(folder: RunFolder, step: int) -> str | None:
    """Why `dbtui export RUN --step STEP` of the step the run finished at is refused, saying what writes its formats
    instead (the conversion of the single file the run wrote): None where RUN/outputs holds the LoRA or diffusers
    folder it builds from, or where RUN/profile.toml cannot be read (that export then says why)."""
    from engine.profile import ProfileError
    from engine.runs.stored_profile import run_profile

    try:
        profile = run_profile(folder)
    except (OSError, ProfileError):
        return None
    try:
        _source(folder, profile, folder.path / "exports" / f"step-{step}", step)
    except FinishedOutputsError as error:
        return str(error)
    return None


def _trained(folder: RunFolder) -> dict[str, Any]:
    """The settings the run trained with (RUN/outputs/profile.toml) as a checkpoint's manifest holds them; export_settings
    lays RUN/profile.toml's saving section, name and base model's place over them. Empty where outputs hold none (written
    before they held it, or removed): RUN/profile.toml's settings are used."""
    from engine.profile import ProfileError
    from engine.runs.stored_profile import run_profile

    try:
        return {"profile": run_profile(folder, folder.outputs / "profile.toml").model_dump(mode="json")}
    except (OSError, ProfileError):
        return {}


def _half_outputs_warning(folder: RunFolder, source: Path, trained: dict[str, Any]) -> Warning | None:
    """The run kept its final denoiser in fp16 (saving.unet_half), since switched off: the export's fp32 files cannot
    hold more than those fp16-rounded weights, where a kept checkpoint's export holds the weights as trained. None for
    weights trained in bf16: fp16 holds every bf16 value from 6.1e-5 (its smallest normal) up exactly, having more
    mantissa bits, and those below within 3e-8 (fp16's subnormal step), against bf16's own step of 1.2e-4 at a typical
    weight of 0.03; on a 0.03-spread tensor 0.014% of the weights move, by 3e-8 at most: nothing to warn of."""
    if _trained_in_bf16(folder, trained):
        return None
    # Complete ones only: a save cut short (step-N.partial) or one without a manifest exports nothing.
    kept = [path.name for _, path in complete_checkpoints(folder)]
    checkpoints = (f"the checkpoints {folder.checkpoints} keeps ({', '.join(kept)}) hold their steps' weights as trained, "
                   "which their exports (`dbtui export RUN --step N`) write" if kept else
                   f"no checkpoint is kept in {folder.checkpoints} to export the weights as trained from")
    return Warning(message=f"the run kept its final denoiser in {source} in fp16 (saving.unet_half = true when it finished): "
                           "this export's fp32 files hold those fp16-rounded weights, not the full-precision ones",
                   advice=checkpoints)


def _trained_in_bf16(folder: RunFolder, trained: dict[str, Any]) -> bool:
    """Whether the run's final weights were bf16: precision.bf16_weights asked (with bf16 mixed precision), and the
    machine of its last start had bf16 (engine/training/precision.py bf16_weights_in_force: else they stayed fp32)."""
    precision = trained.get("profile", {}).get("precision", {})
    if not (precision.get("bf16_weights") and precision.get("mixed_precision") == "bf16"):
        return False
    try:
        hardware = next(run_starts(folder.events), {}).get("hardware") or {}
    except OSError:
        return False
    gpus = hardware.get("gpus") if isinstance(hardware, dict) else None
    return bool(gpus) and isinstance(gpus[0], dict) and bool(gpus[0].get("bf16"))


def _source(folder: RunFolder, profile: Any, target: Path, step: int) -> Path:
    """The folder of RUN/outputs the final weights are read from, or a refusal saying what makes the export."""
    outputs = folder.outputs
    if profile.training.method == "lora":
        if not (outputs / "lora" / LORA_FILE).is_file():
            raise FinishedOutputsError(f"step {step} is where {folder.path} finished, and its final LoRA, "
                                       f"{outputs / 'lora' / LORA_FILE}, is missing: put it back to export it")
        return outputs / "lora"
    if (outputs / "diffusers" / "model_index.json").is_file():
        return outputs / "diffusers"
    # The .safetensors first: a .ckpt is a pickle, converted from only where no .safetensors was written.
    singles = sorted((path for path in outputs.glob("*.*") if path.suffix in (".safetensors", ".ckpt")
                      and not path.stem.endswith(".previous")), key=lambda path: (path.suffix != ".safetensors", path))
    if not singles:
        raise FinishedOutputsError(f"step {step} is where {folder.path} finished, and {outputs} holds neither its "
                                   "diffusers folder nor a single file of its model: put them back to export it")
    folder_out = target / "diffusers"
    steps = [f"dbtui convert to-diffusers {shlex.quote(str(singles[0]))} {shlex.quote(str(folder_out))}"
             + _base_options(profile)]
    steps += [f"dbtui convert to-single-file {shlex.quote(str(folder_out))} "
              f"{shlex.quote(str(target / f'{profile.name}.{fmt}'))}"
              for fmt in ("safetensors", "ckpt") if fmt in profile.saving.export]
    raise FinishedOutputsError(f"step {step} is where {folder.path} finished, and the run wrote its model as "
                               f"{' and '.join(map(str, singles))} only, no diffusers folder, which an export is built from: "
                               f"`{'` then `'.join(steps)}` writes it in the formats {folder.profile} lists")


def _base_options(profile: Any) -> str:
    """to-diffusers' options that take the architecture and tokenizer from the run's base model, where it is a diffusers
    folder: the fine-tune has its shapes, which a model of a non-standard size needs to be converted at all."""
    from engine.builtin import is_builtin, resolve_model

    base = resolve_model(profile.model.pretrained) if is_builtin(profile.model.pretrained) else profile.model.pretrained
    if not (Path(base) / "model_index.json").is_file():
        return ""  # a hub id or a single file: a standard architecture, which to-diffusers knows
    tokenizer = f" --tokenizer {shlex.quote(profile.model.tokenizer)}" if profile.model.tokenizer else ""
    return f" --config {shlex.quote(str(base))}{tokenizer}"


def _lora_restore(components: Any, profile: Any, source: Path) -> list[Any] | None:
    """The run's final LoRA folder on the base model's parts, read by diffusers as any user's pipeline reads it: the
    file's scales are folded into its weights (alpha = rank), which the export folds in again unchanged."""
    text_encoders = list(components.text_encoders)
    pipe = components.family.pipeline(components, components.unet, text_encoders, components.noise_scheduler)
    try:
        pipe.load_lora_weights(source)
    except RuntimeError as error:  # torch's load_state_dict: the LoRA of a model of other shapes
        if "size mismatch" not in str(error):
            raise
        raise CheckpointMismatchError(f"{source}'s weights do not fit the model the profile's settings make (another "
                                      "base model, training.lora rank or targets): put back in the profile the settings "
                                      "it was trained with") from None
    family = components.family
    if not getattr(components.unet, "peft_config", None):  # diffusers loads none of another family's layers, silently
        raise CheckpointMismatchError(f"{source} holds no LoRA of the {family.denoiser_name} of the base model "
                                      f"{profile.model.pretrained} ({family.label}): write the model it was trained from "
                                      "as model.pretrained in the profile")
    return text_encoders if profile.training.train_text_encoder else None


def _full_restore(components: Any, profile: Any, source: Path) -> list[Any] | None:
    """The run's final diffusers folder's trained parts (the denoiser, and the text encoders that trained)."""
    from engine.training.trainable import trained_text_encoders

    family = components.family
    if not (source / family.denoiser_name).is_dir():  # another family's folder: said "incomplete" by restore_part
        raise CheckpointMismatchError(f"{source} holds no {family.denoiser_name} of the base model "
                                      f"{profile.model.pretrained} ({family.label}): write the model it was trained from "
                                      "as model.pretrained in the profile")
    restore_part(components.unet, family.denoiser_name, source)
    if not profile.training.train_text_encoder:
        return None
    text_encoders = list(components.text_encoders)
    for index in trained_text_encoders(family, profile.training):
        restore_part(text_encoders[index], family.text_encoder_names[index], source)
    return text_encoders
