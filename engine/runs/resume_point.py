"""Resuming from a chosen checkpoint (``dbtui resume --from``), checked before a trainer starts.

A resume from an earlier checkpoint than the run's latest starts a new branch of the run. The
later checkpoints belong to the branch it leaves: were they left in ``RUN/checkpoints/``, the next
plain resume would take the old branch's latest and the rotation (``saving.keep_last_n``) would
delete the new branch's first checkpoints, the chosen one among them. So they are moved, whole,
into ``RUN/checkpoints-set-aside/``, where nothing resumes or deletes them.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import time
from pathlib import Path
from typing import Any

from engine.evaluation.best import step_number
from engine.events import CheckpointSaved, event_from_dict, marked_lines_from_the_end
from engine.profile import Profile, ProfileError
from engine.profile.changes import shown_value
from engine.runs.base_identity import folder_named, identity_named, same_source, scheduler_prediction
from engine.runs.checkpoints import (MANIFEST, CheckpointError, complete_checkpoints, damage_if_still_there, damage_of,
                                     read_manifest)
from engine.runs.folder import RunFolder, RunFolderError
from engine.runs.stored_profile import run_profile

SET_ASIDE = "checkpoints-set-aside"


def checkpoint_named(folder: RunFolder, given: str) -> str:
    """The checkpoint folder ``--from``/``--resume`` names as the user wrote it: a step number (16, as `dbtui export
    --step` takes), a path, or a folder name inside RUN/checkpoints (step-00000016). Which one is checked by
    chosen_step, whose refusal lists the run's kept checkpoints; a step none is at is refused here, by its number."""
    if given.isdigit():
        step = int(given)
        done = complete_checkpoints(folder)
        kept = [path for kept_step, path in done if kept_step == step]
        aside = sorted((folder.path / SET_ASIDE).glob(f"*/step-{step:08d}"))  # chosen_step says how to take it back
        if not kept and not aside:  # not a folder the user named: "no checkpoint folder …/step-00000015" puzzled
            raise CheckpointError(f"no checkpoint at step {step}; {_kept_listing(folder, done)}")
        return str((kept or aside)[-1])
    if not Path(given).exists() and (folder.checkpoints / given).is_dir():
        return str(folder.checkpoints / given)
    return given


def chosen_step(folder: RunFolder, checkpoint: Path) -> int:
    """The step of the checkpoint ``--from`` names, or a CheckpointError that lists the run's kept ones.

    Only this run's own complete checkpoints are taken: each is checked before any later one is set
    aside, so that a checkpoint of another run (another model, family or method) never leaves this
    run without its latest checkpoints and then fails to load.
    """
    kept = complete_checkpoints(folder)
    listed = _kept_listing(folder, kept)
    if not checkpoint.is_dir():
        raise CheckpointError(f"no checkpoint folder {checkpoint}; {listed}")
    try:
        manifest = read_manifest(checkpoint)
    except CheckpointError as error:
        raise CheckpointError(f"{error}; {listed}") from None
    step = step_number(manifest.get("step"))
    if step is None:  # null, text, a fraction, Infinity (whose int() raised OverflowError): never what dbtui writes
        held = f"\"step\": {json.dumps(manifest['step'])}" if "step" in manifest else "no \"step\""
        raise CheckpointError(f"checkpoint {checkpoint} is damaged: its {MANIFEST} names no step ({held}); {listed}")
    real = os.path.realpath(checkpoint)
    if any(os.path.realpath(path) == real for _, path in kept):
        damage = damage_of(checkpoint)
        if damage:  # said before the later checkpoints are set aside, which would leave the run only this one
            others = [(kept_step, path) for kept_step, path in kept if os.path.realpath(path) != real]
            raise CheckpointError(f"checkpoint {checkpoint} is damaged: {damage}; "
                                  + (f"the run's other kept checkpoints: {_named(others)}" if others else listed))
        return step
    if Path(real).is_relative_to(os.path.realpath(folder.path / SET_ASIDE)):
        raise CheckpointError(f"{checkpoint} was set aside by an earlier resume from an earlier step; to go back to it, "
                              f"move its folder into {folder.checkpoints} first; {listed}")
    raise CheckpointError(f"{checkpoint} is not one of this run's complete checkpoints (a resume continues the run "
                          f"in {folder.path} with its own weights); {listed}")


def _kept_listing(folder: RunFolder, kept: list[tuple[int, Path]]) -> str:
    """The run's kept checkpoints, for a refusal of the one asked for."""
    if not kept:
        return f"the run has no complete checkpoint in {folder.checkpoints}"
    return "the run's kept checkpoints: " + _named(kept)


def _named(kept: list[tuple[int, Path]]) -> str:
    """The checkpoints' paths, a damaged one (cut short by a copy stopped part way) marked so: not one to resume from."""
    return ", ".join(f"{path} (damaged: {damage})" if (damage := damage_if_still_there(path)) else str(path)
                     for _, path in kept)


def last_saved_step(folder: RunFolder) -> int | None:
    """The step of the last checkpoint the run's events say was saved (since it last started from step 0); None where
    they name none."""
    try:
        for line in marked_lines_from_the_end(folder.events, (b'"checkpoint_saved"',)):
            try:
                event = event_from_dict(json.loads(line))
            except (ValueError, TypeError):
                continue  # a line being written
            if isinstance(event, CheckpointSaved):
                return event.step
    except OSError:
        return None
    return None


def check_none_lost(folder: RunFolder) -> None:
    """Refuse to train from step 0 a run whose checkpoints were saved but are gone from RUN/checkpoints/ (deleted or
    moved by hand): the resume said it "saved no checkpoint" and trained again what it had trained."""
    step = last_saved_step(folder)
    if step is not None:
        raise CheckpointError(
            f"{folder.path} saved checkpoints up to step {step}, but {folder.checkpoints} holds no complete one now "
            f"(deleted or moved?): put them back there to resume from step {step}, or train it again from step 0 as a "
            f"new run: `dbtui run {shlex.quote(str(folder.profile))} --set name=NEW_NAME`")


def _changed_fields(section: str, before: Any, now: Any) -> list[str]:
    """``section.field = before, not now`` for each field of a profile section that differs, values as TOML writes
    them: the advice is to put them back in RUN/profile.toml."""
    return [f"{section}.{name} = {shown_value(was)}, not {shown_value(then)}" for name in type(now).model_fields
            if (was := getattr(before, name)) != (then := getattr(now, name))]


def check_same_model(folder: RunFolder, profile: Profile) -> None:
    """Refuse a resume whose profile trains another model, method or LoRA shape than the run's checkpoints hold, or
    changes a setting the checkpoint fixes.

    The latest checkpoint's manifest says what it was trained with (the run's stored profile, for checkpoints made
    before manifests held it), so that `dbtui resume RUN` after an edit of RUN/profile.toml is checked too; were a
    new profile of another model written over the stored one, the resume would fail on load and leave the run
    unable to resume or export even with its own profile.
    """
    before, base_model = _trained_with(folder)
    if before is None:
        return  # nothing readable: the checkpoints' own files are checked when they load
    said = []
    if not same_source(before.model.pretrained, profile.model.pretrained) and not _same_weights(base_model, profile):
        said.append(f"model {before.model.pretrained}, not {profile.model.pretrained}")
    elif changed := _prediction_changed(base_model, profile):
        said.append(changed)
    if before.training.method != profile.training.method:
        said.append(f"method {before.training.method}, not {profile.training.method}")
    elif before.lora != profile.lora:  # the options in force, whether the section is written or not
        said += _changed_fields("training.lora", before.lora, profile.lora)
    said += _changed_fields("training.flow", before.flow, profile.flow)  # the defaults in force, written or not
    # Settings the checkpoint fixes (the optimizer's and scheduler's state hold the learning rate) or that would
    # change the run halfway (image size, batch, precision): resumed, they were ignored or applied mid-run silently.
    # Steps, saving, sampling, evaluation and the data's folders may change; the other changes are warned of once the
    # checkpoint has loaded (resume_changes.py).
    fixed = [f"optimizer.{name}" for name in type(profile.optimizer).model_fields] + list(_FIXED_BY_THE_RUN)
    for key in fixed:
        section, field = key.split(".")
        was, now = getattr(getattr(before, section), field), getattr(getattr(profile, section), field)
        if was != now and not (key in ("model.vae", "model.tokenizer") and was and now and same_source(was, now)):
            said.append(f"{key} = {shown_value(was)}, not {shown_value(now)}")
    if said:
        raise RunFolderError(
            f"{folder.path}'s checkpoints were trained with {'; '.join(said)}: a resume cannot continue them with "
            f"this profile. Resume with the settings they were trained with (`dbtui resume {shlex.quote(str(folder.path))}` reads "
            f"{folder.profile}: put them back there if you changed it), or start a new run with `--set name=NEW_NAME`."
        )


def _same_weights(recorded: Any, profile: Profile) -> bool:
    """Whether the base model the profile names is the one the checkpoint's manifest ``recorded`` (its "base_model")
    it was trained on, by identity: a model folder copied or moved elsewhere was refused as another model. A manifest
    of before the identity was recorded tells nothing, and a model there now that is not a diffusers folder (a hub id,
    a single file) is not read to tell."""
    identity = recorded.get("identity") if isinstance(recorded, dict) else None
    return isinstance(identity, str) and identity == identity_named(profile.model.pretrained)


def _prediction_changed(recorded: Any, profile: Profile) -> str | None:
    """What the base model's scheduler says it predicts now, where the checkpoint's manifest recorded otherwise: an
    edited scheduler_config.json (an SD2.x file converted as epsilon, found to predict v) changed the loss's target
    halfway, silently, as the weights' identity leaves the scheduler out. Nothing where the manifest predates the
    record or the model is not a folder here."""
    if not isinstance(recorded, dict) or "prediction_type" not in recorded:
        return None
    folder = folder_named(profile.model.pretrained)
    was, now = recorded["prediction_type"], scheduler_prediction(folder) if folder is not None else None
    if folder is None or was == now:
        return None
    return (f"a base model predicting {was or 'epsilon (unset)'}, not {now or 'epsilon (unset)'} as "
            f"{folder / 'scheduler' / 'scheduler_config.json'} says now")


def _trained_with(folder: RunFolder) -> tuple[Profile | None, Any]:
    """The profile the run's latest checkpoint was trained with (its manifest's, else the run's stored one), and its
    manifest's record of the base model (None where it holds none)."""
    from engine.profile import validate_data

    latest = complete_checkpoints(folder)
    try:
        manifest = read_manifest(latest[-1][1]) if latest else {}
        recorded = manifest.get("profile")
        profile = validate_data(recorded, dumped=True) if isinstance(recorded, dict) else run_profile(folder)
    except (OSError, ProfileError, CheckpointError):
        return None, None
    return profile, manifest.get("base_model")


# Besides every optimizer setting (its state and the scheduler's, in the checkpoint, hold the learning rate).
# train_text_encoder: the optimizer state holds a group for the text encoder's weights, or none; it loads with neither
# other setting, and the failure read as a damaged checkpoint. The tokenizer, clip_skip, the noise offset, min-SNR and
# prior preservation's switch and weight define the loss the steps so far were trained on. Other settings that train
# the steps to come otherwise (captions, flips, crops) are allowed, and warned of (resume_changes.py).
_FIXED_BY_THE_RUN = ("model.quantize", "model.vae", "model.tokenizer", "model.revision", "training.seed",
                     "training.train_batch_size", "training.gradient_accumulation_steps", "training.train_text_encoder",
                     "training.noise_offset", "training.min_snr_gamma", "training.clip_skip", "prior.enabled",
                     "prior.loss_weight", "dataset.resolution", "dataset.bucketing", "dataset.buckets",
                     "precision.mixed_precision", "precision.bf16_weights")


def set_aside_later(folder: RunFolder, step: int) -> list[Path]:
    """Move the run's checkpoints later than ``step`` into RUN/checkpoints-set-aside/TIME/; returns where they went."""
    later = [path for kept_step, path in complete_checkpoints(folder) if kept_step > step]
    if not later:
        return []
    aside = folder.path / SET_ASIDE / time.strftime("%Y%m%d-%H%M%S")
    aside.mkdir(parents=True, exist_ok=True)
    moved = []
    for path in later:
        target = aside / path.name
        path.rename(target)  # the same disk: a rename, never a copy
        moved.append(target)
    return moved


def put_back(folder: RunFolder, moved: list[Path]) -> None:
    """Undo ``set_aside_later``: its checkpoints back into RUN/checkpoints, and its folders gone where that empties them."""
    for path in moved:
        path.rename(folder.checkpoints / path.name)
    if moved:
        with contextlib.suppress(OSError):
            moved[0].parent.rmdir()
            moved[0].parent.parent.rmdir()
