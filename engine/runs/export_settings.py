"""The settings an export builds a checkpoint's model with: those it was trained with, not RUN/profile.toml's now.

The weights a checkpoint holds are defined by how it trained (the method, whether the text encoder trained, the LoRA's
rank, alpha and targets, the flow settings). Read from RUN/profile.toml, edited since, they made an export fail on a
shape mismatch, a LoRA of another strength, or one without its text encoders' layers, all said as nothing wrong or as a
damaged checkpoint. RUN/profile.toml still says what an export may change: where the base model, its VAE and tokenizer
are now, the run's name and the saving section (the formats).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.events import Event, Warning
from engine.profile import Profile, ProfileError, validate_data
from engine.runs.checkpoints import CheckpointError, CheckpointMismatchError, recorded_profile
from engine.runs.concept_changes import said_profile_changes
from engine.runs.resume_changes import MAY_CHANGE

def export_settings(now: Profile, manifest: dict[str, Any], checkpoint: Path, profile_file: Path,
                    emit: Callable[[Event], None], *, weights: str = "the checkpoint",
                    record: str = "its manifest.json") -> Profile:
    """The profile to export the checkpoint whose manifest is ``manifest`` with; ``now``: RUN/profile.toml's. A
    manifest of before manifests held the profile leaves ``now`` as it is, once its method is seen to be the same.
    ``weights`` and ``record`` name what is exported and the file its settings are read from, where no checkpoint is
    (a finished run's final outputs)."""
    trained = recorded_profile(manifest)
    if trained is None:
        method = manifest.get("method")
        if method in ("full", "lora") and method != now.training.method:
            raise CheckpointError(f"checkpoint {checkpoint} was trained with training.method = \"{method}\", and "
                                  f"{profile_file} now says \"{now.training.method}\": put \"{method}\" back to export it")
        return now
    data = trained.model_dump(mode="json")
    data.update(name=now.name, saving=now.saving.model_dump(mode="json"))
    data["model"].update(pretrained=now.model.pretrained, vae=now.model.vae, tokenizer=now.model.tokenizer)
    try:
        profile = validate_data(data, dumped=True)
    except ProfileError as error:  # saving.export asks for a format the trained method has none of (lora_kohya)
        raise CheckpointError(f"{profile_file}'s saving section does not fit how checkpoint {checkpoint} was trained "
                              f"(training.method = \"{trained.training.method}\"): {error}") from None
    changed = said_profile_changes(profile, now, lambda key: not MAY_CHANGE.fullmatch(key))
    if changed:
        emit(Warning(message=f"{profile_file} is not as {weights} was trained: {'; '.join(changed)}",
                     advice=f"the export builds the model with the settings {weights} was trained with ({record} holds "
                            f"them); from {profile_file.name} it takes only where the base model, its VAE and tokenizer are, the "
                            f"run's name and the saving section"))
    return profile



def base_model_mismatch(error: CheckpointMismatchError, manifest: dict[str, Any], checkpoint: Path, now: Profile,
                        profile_file: Path, *, record: str = "its manifest.json", weights: str = "") -> CheckpointMismatchError:
    """``error`` (the checkpoint's weights do not fit the model built for them) said for an export: where the manifest
    holds the settings it was trained with, they built the model, and only the base model RUN/profile.toml names can
    differ; the generic advice, to put the training settings back in the profile, would change nothing. ``weights``
    names them where they are not a checkpoint's (a finished run's final weights)."""
    trained = recorded_profile(manifest)
    if trained is None:
        return error
    was = trained.model.pretrained
    where = (f"it was trained from {was}: write that model's place there" if was != now.model.pretrained else
             "the model there is not the one it was trained from (replaced since?): put that one back")
    weights = weights or f"checkpoint {checkpoint}'s weights"
    return CheckpointMismatchError(f"{weights} do not fit the base model {now.model.pretrained} "
                                   f"that model.pretrained names in {profile_file} (the rest of the model is built with "
                                   f"the settings {record} records): {where}")
