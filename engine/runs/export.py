"""``dbtui export RUN --step N``: the outputs of any kept checkpoint, not only the last step's.

The run folder's own profile says what to export and from which base model; the checkpoint holds
the trained weights (full parts, or LoRA adapters) in diffusers format, and its manifest the settings they were
trained with, which build the model they are read into (export_settings.py). Outputs go to
``RUN/exports/step-N/`` and are written the same way as a finished run's.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.errors import DbtuiError
from engine.events import Event, PhaseFinished, PhaseStarted
from engine.runs.checkpoints import (MANIFEST, CheckpointError, CheckpointMismatchError, complete_checkpoints, damage_of,
                                    read_manifest)
from engine.runs.export_finished import export_finished, finished_refusal
from engine.runs.export_pin import pinned
from engine.runs.export_settings import base_model_mismatch, export_settings
from engine.runs.file_errors import RunFilesError, said_as_run_files_error
from engine.runs.folder import RunFolder
from engine.runs.keep import best_kept_said
from engine.runs.later_incomplete import incomplete_checkpoints, later_incomplete_warning
from engine.runs.restore_part import restore_part
from engine.runs.resume_point import SET_ASIDE, last_saved_step


class NoSuchCheckpointError(DbtuiError):
    """The run has no complete checkpoint at the asked step."""


def checkpoint_at(folder: RunFolder, step: int | None) -> tuple[int, Path]:
    """(step, path) of the run's checkpoint at ``step``, or its latest when ``step`` is None."""
    found = complete_checkpoints(folder)
    finished = folder.finished_step()  # by the state file, or the event log where that is lost
    # Where RUN/outputs lacks what `--step FINISHED` builds from (a full run that wrote a single file only), that
    # export's refusal, which says what does work: offered, the step sent the user to it.
    refused = finished_refusal(folder, finished) if finished is not None and finished not in dict(found) else None
    if not found:
        outputs = ("" if finished is None else f"; {refused}" if refused else
                   f"; its final outputs (step {finished}) are in {folder.outputs}, and `--step {finished}` writes them "
                   "in the formats saving.export lists")
        saved = last_saved_step(folder)
        # Deleted or moved by hand: "saving.every_n_steps decides" sent the user to a setting that had saved them.
        why = (f"its checkpoints, saved up to step {saved}, are gone from {folder.checkpoints}: put them back to export "
               "one" if saved is not None else "saving.every_n_steps decides when they are kept")
        raise NoSuchCheckpointError(f"{folder.path} has no complete checkpoint ({why}){outputs}")
    if step is None:
        return found[-1]
    for kept_step, path in found:
        if kept_step == step:
            return kept_step, path
    kept = ", ".join(str(s) for s, _ in found)
    if refused:
        kept += f"; {refused}"
    elif finished is not None and finished not in dict(found):
        # Exportable too (from RUN/outputs); left unnamed, the step a user most likely wants looked gone.
        kept += f", and {finished}, where the run finished (from its outputs)"
    kept += best_kept_said(folder, step)
    aside = sorted((folder.path / SET_ASIDE).glob(f"*/step-{step:08d}"))
    if aside:  # a resume --from an earlier step moved it, whole, out of the way of the new branch
        raise NoSuchCheckpointError(f"step {step} was set aside by a resume from an earlier step: it is in {aside[-1]}. To "
                                    f"export it, move that folder back into {folder.checkpoints}; the kept steps are: {kept}")
    incomplete = incomplete_checkpoints(folder, found).get(step)
    if incomplete is not None:
        raise NoSuchCheckpointError(f"{incomplete} is there but incomplete: its {MANIFEST} is missing or damaged (a save "
                                    f"or a deletion cut short), so its weights cannot be trusted; the kept steps are: {kept}")
    state = folder.read_state()
    # A step the live run has not reached yet (its last, say) read as one lost among the kept steps.
    later = (f"; the run is still training (step {state.step} of {state.total_steps}): export step {step} once it has "
             "saved or finished it" if state is not None and step > state.step and folder.is_live() else "")
    raise NoSuchCheckpointError(f"{folder.path} has no checkpoint at step {step}; the kept steps are: {kept}{later}")


def _said_if_later_incomplete(folder: RunFolder, step: int, emit: Callable[[Event], None]) -> None:
    """Warn that the latest checkpoint exported is not the latest folder, where a later one is incomplete: without a
    word, an export of the run's latest step silently wrote an earlier one."""
    warning = later_incomplete_warning(folder, step, "exporting", "", "cannot be exported")
    if warning:
        emit(warning)


def export_checkpoint(run_dir: Path, step: int | None = None, emit: Callable[[Event], None] | None = None) -> dict[str, str]:
    """Write the profile's export formats for the checkpoint at ``step`` (latest by default); returns {format: path}."""
    emit = emit or (lambda event: None)
    folder = RunFolder(Path(run_dir))
    if not folder.profile.is_file():
        raise NoSuchCheckpointError(f"'{run_dir}' is not a run folder (no profile.toml); `dbtui runs` lists them")
    if step is not None and step == folder.finished_step() and step not in dict(complete_checkpoints(folder)):
        return export_finished(folder, step, emit)  # built from RUN/outputs, which hold that step's weights
    asked = step
    step, checkpoint = checkpoint_at(folder, step)
    if asked is None:
        _said_if_later_incomplete(folder, step, emit)
    damage = damage_of(checkpoint)  # said of the checkpoint itself, in seconds: read later, it was of the export's copy
    if damage:
        others = [str(kept) for kept, _ in complete_checkpoints(folder) if kept != step]
        raise CheckpointError(f"checkpoint {checkpoint} is damaged: {damage}"
                              + (f"; export another with --step (kept: {', '.join(others)})" if others else ""))
    removed = NoSuchCheckpointError(f"the checkpoint at step {step} was removed while it was read: the running trainer "
                                    "keeps only its last saving.keep_last_n; export again for its latest, or once the "
                                    "run has ended")
    with contextlib.ExitStack() as held:
        try:
            # Held from here, not from when its weights are read: a live run's rotation removed it during the
            # minutes the base model takes to load. Released however the export ends.
            files = held.enter_context(pinned(checkpoint))
        except CheckpointError:
            raise removed from None  # between the choice and the pin (its manifest goes first)
        return _export_from(folder, step, checkpoint, files, removed, emit)


def _export_from(folder: RunFolder, step: int, checkpoint: Path, files: Path, removed: NoSuchCheckpointError,
                 emit: Callable[[Event], None]) -> dict[str, str]:
    """export_checkpoint's work once ``files`` (the pinned checkpoint, or the checkpoint itself where the disk has no
    hard links) are held: the base model with the checkpoint's weights, written as the profile's exports."""
    from engine.runs.stored_profile import run_profile

    try:
        manifest = read_manifest(files)
        profile = export_settings(run_profile(folder), manifest, checkpoint, folder.profile, emit)
    except CheckpointError:
        if files != checkpoint or (checkpoint / MANIFEST).exists():
            raise
        raise removed from None  # as below
    target = folder.path / "exports" / f"step-{step}"
    again = export_again(folder, step, target)

    def restore(components: Any) -> list[Any] | None:
        from engine.training.trainable import add_lora_adapters

        if profile.training.method == "lora":
            add_lora_adapters(components, profile)
        try:
            return _restore(components, profile, files, checkpoint, folder.profile)
        except CheckpointMismatchError as error:
            raise base_model_mismatch(error, manifest, checkpoint, profile, folder.profile) from None
        except CheckpointError:
            if files != checkpoint or (checkpoint / MANIFEST).exists():
                raise
            raise removed from None  # not pinned (no hard links here), and a live run's rotation removed it meanwhile

    return build_export(folder, profile, target, again, restore, emit,
                        trained_on=(manifest.get("base_model"), f"checkpoint {checkpoint}'s weights"),
                        trained_family=family_of_weights(lambda name: _holds(files, name)))


def export_again(folder: RunFolder, step: int, target: Path) -> str:
    """The command that writes the export at ``step`` once a refusal's cause is dealt with: "again" only where an
    earlier export wrote into ``target`` (a refusal comes before this export writes anything)."""
    try:
        earlier = target.is_dir() and any(target.iterdir())
    except OSError:  # another user's folder of mode 700: _check_writable refuses it, and says what to do
        earlier = False
    return f"then `dbtui export {shlex.quote(str(folder.path))} --step {step}` writes it{' again' if earlier else ''}"


def build_export(folder: RunFolder, profile: Any, target: Path, again: str, restore: Callable[[Any], list[Any] | None],
                 emit: Callable[[Event], None], trained_on: tuple[Any, str],
                 trained_family: str | None = None) -> dict[str, str]:
    """The base model with the trained weights ``restore`` puts into its components (returning the text encoders
    when they trained, else None), written into ``target`` as the profile's exports; ``again`` says how to redo it.
    ``trained_on``: the record of the base model they were trained on (None where none was kept), and what they are;
    ``trained_family``: the family the weights' own files say they are of (family_of_weights), else None."""
    from engine.runs.base_identity import base_model_record, check_base_model, write_record

    from engine.models.loading import load_components, resolve_model_folder, run_models
    from engine.training.outputs import save_outputs

    _check_writable(target, again)  # before the minutes the base model takes to load
    trained = trained_on[0] if isinstance(trained_on[0], dict) and trained_on[0].get("family") else None
    _check_base_model(profile, folder, trained["family"] if trained else trained_family)
    # By the family the weights' or the base model's files say, before its minutes of loading (or of downloading a
    # hub id, whose family its name only guesses).
    _check_formats(profile, folder, trained_family, again)
    started = time.perf_counter()
    emit(PhaseStarted(phase="load_model", description=profile.model.pretrained))  # the seconds or minutes that go here
    model = resolve_model_folder(profile.model.pretrained, revision=profile.model.revision, work_dir=run_models(folder.path),
                                 emit=emit, tokenizer=profile.model.tokenizer, vae=profile.model.vae, run_base=True)
    check_base_model(trained_on[0], model, profile, folder.profile, trained_on[1], emit,  # before its minutes of loading
                     trained_family)
    components = load_components(model, vae=profile.model.vae, tokenizer=profile.model.tokenizer)
    emit(PhaseFinished(phase="load_model", seconds=time.perf_counter() - started))
    _check_formats(profile, folder, components.family.id, again)  # a family only its weights could tell
    text_encoders = restore(components)
    try:
        with said_as_run_files_error(folder.path, then=again):
            written = save_outputs(profile, components, components.unet, text_encoders, target, emit)
            # As RUN/outputs hold it: `dbtui convert lora-to-kohya` of the export's LoRA reads its family there.
            write_record(target, trained or base_model_record(profile.model.pretrained, model))
            return written
    except BaseException:
        with contextlib.suppress(OSError):
            target.rmdir()  # made for this export and left empty by its failure; one holding earlier outputs stays
        raise


def _check_writable(target: Path, then: str) -> None:
    """Refuse an output folder that cannot be written: a file in its way, or a folder this user may not write to. An
    export has no output option: the advice says what makes its one place writable."""
    place = target
    while not place.exists():  # nothing made yet: the nearest of its folders that is there decides
        place = place.parent
    if not place.is_dir():
        raise RunFilesError(f"'{place}' is in the way: a file stands where the export writes a folder",
                            f"move it out of the run folder; {then}")
    if os.access(place, os.W_OK | os.X_OK):
        return
    if os.statvfs(place).f_flag & os.ST_RDONLY:
        advice = "remount that disk writable, or copy the run folder to a writable disk and export it there"
    elif place == target:
        advice = f"make it writable (`chmod -R u+w {shlex.quote(str(place))}`), or rename or remove it for a new one"
    else:
        advice = f"make it writable (`chmod u+w {shlex.quote(str(place))}`)"
    raise RunFilesError(f"the export writes into {target}, and {place} is read-only (or not this user's)", f"{advice}; {then}")


class BaseModelGoneError(DbtuiError):
    """The run's base model, which an export reads its untrained parts from, is no longer where the run found it."""


def _check_base_model(profile: Any, folder: RunFolder, family_id: str | None) -> None:
    from engine.dataset.profile_paths import model_source_problems
    from engine.runs.base_needs import base_model_needs

    problems = model_source_problems(profile.model.pretrained, profile.model.vae)
    if problems:
        raise BaseModelGoneError(f"the run's base model cannot be read: {problems[0].message}. "
                                 f"{base_model_needs(profile, family_id)}: put it back where the run found it, or write "
                                 f"its new place in {folder.profile} (model.pretrained = \"NEW_PLACE\"), then export again")


class ExportFormatError(DbtuiError):
    """RUN/profile.toml's saving.export lists a format the run's model family is not written in."""


def _check_formats(profile: Any, folder: RunFolder, family_id: str | None, then: str) -> None:
    """Refuse the formats the family cannot take (Flux's single files) before anything is written: the export wrote
    the others first (a Flux diffusers folder is gigabytes), then failed. ``family_id`` None: as the files say."""
    from engine.model_problems import family_setting_problems

    settings = family_setting_problems(profile, family_id)
    refused = [problem for problem in settings.refused if problem.key == "saving.export"]
    if refused and settings.certain:
        raise ExportFormatError(f"{folder.profile}: saving.export {refused[0].message}: edit that list; {then}")
    # The LoRA's targets are the checkpoint's (export_settings): only the list of formats can change now.
    unplaced = [problem for problem in settings.refused
                if problem.key in ("training.lora.unet_targets", "training.lora.text_encoder_targets")]
    if unplaced and settings.certain:
        raise ExportFormatError(f"{folder.profile}: saving.export lists lora_kohya, which cannot hold this run's LoRA "
                                f"(trained with {unplaced[0].key}: {unplaced[0].message}): remove lora_kohya from that "
                                f"list; {then}")


def family_of_weights(holds: Callable[[str], bool]) -> str | None:
    """The family whose denoiser trained weights hold (``holds(part)``: whether they hold that part's weights), where
    no other family's denoiser has its name: Flux's transformer tells Flux, SD's and SDXL's unet tells neither."""
    from engine.models.registry import FAMILIES

    held = [family.id for family in FAMILIES if holds(family.denoiser_name)]
    return held[0] if len(held) == 1 else None


def _restore(components: Any, profile: Any, files: Path, checkpoint: Path, profile_file: Path) -> list[Any] | None:
    """The checkpoint's trained weights, read from ``files`` (its pin), into ``components``; the text encoders when
    they trained (else None: a whole pipeline reads the frozen ones from the base model). Errors name the checkpoint."""
    family = components.family
    other = next((name for name in ("unet", "transformer") if name != family.denoiser_name and _holds(files, name)), None)
    if other is not None and not _holds(files, family.denoiser_name):  # said "incomplete", as if another step would do
        raise CheckpointMismatchError(f"checkpoint {checkpoint} holds a trained {other}, and the base model "
                                      f"{profile.model.pretrained} is {family.label}, whose {family.denoiser_name} it has "
                                      f"not: write the model it was trained from as model.pretrained in {profile_file}")
    restore_part(components.unet, family.denoiser_name, files, shown=checkpoint)
    held = [name for name in family.text_encoder_names if _holds(files, name)]
    if not profile.training.train_text_encoder:
        if held:  # a manifest of before manifests held the profile: RUN/profile.toml's setting, edited since
            raise CheckpointError(f"checkpoint {checkpoint} holds its trained {' and '.join(held)}, and {profile_file} "
                                  "says training.train_text_encoder = false, which would leave what they learned out of "
                                  "the export: put true back to export it")
        return None
    text_encoders = list(components.text_encoders)
    for name, text_encoder in zip(components.family.text_encoder_names, text_encoders):
        if name in held:
            restore_part(text_encoder, name, files, shown=checkpoint)
    return text_encoders


def _holds(files: Path, name: str) -> bool:
    """Whether a checkpoint holds the part ``name``'s trained weights: whole, or its LoRA."""
    return (files / name).is_dir() or (files / "lora" / f"{name}.safetensors").is_file()
