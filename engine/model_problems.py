"""What a profile's model says of its settings before any weights load: what its family refuses or warns of,
the parts a local folder lacks, and a resolution far from the model's own size.

``dbtui validate``, ``dbtui run`` and the exports ask here; ``engine.model_info`` describes the model itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, NamedTuple

from engine.errors import DbtuiError
from engine.model_info import family_by_name, family_from_files, guessed_by_name, native_size, size_multiple
from engine.models.folder_parts import missing_parts, missing_parts_message
from engine.profile.model_source import holds_model_index, local_path, model_kind
from engine.profile.problems import Problem

if TYPE_CHECKING:
    from engine.profile.schema import ModelSection


class FamilySettings(NamedTuple):
    """What a profile's model family makes of its settings, before any weights load."""

    refused: list[Problem]  # settings the family cannot honour
    warnings: list[Problem]  # settings it runs with, likely not as meant
    certain: bool  # the family was read from the model's files (or a built-in's name), not guessed from a name


def family_setting_problems(profile: Any, family_id: str | None = None) -> FamilySettings:
    """The profile's settings its model's family refuses or warns of, known before any weights load. ``family_id``:
    the family already read from the model's files (the wizard's model step), taken as certain.

    The trainer asks the family (``Family.check_profile``, ``Family.profile_warnings``) once the model has
    loaded; ``dbtui validate`` and ``dbtui run`` ask the same family here, so that what the load would refuse
    is an error before it, where the family is certain, and a warning where it is only guessed.
    """
    from engine.data.buckets import resolution_warnings
    from engine.models.family import SettingsRefusedError
    from engine.models.registry import family_named

    source = profile.model.pretrained
    known = family_id or family_from_files(source)
    try:
        family = family_named(known or family_by_name(source))  # the files were read once, just above
    except (DbtuiError, KeyError):
        return FamilySettings([], [], False)  # a model that cannot be told here is the load's to report
    warnings = [Problem(key, message) for key, message in family.profile_warnings(profile, profile.precision.mixed_precision)]
    # The model's own size step (a tiny Flux's is 4, not 16) is read only where the sizes use it: buckets, or a
    # resolution off the family's usual step.
    step = None
    if profile.dataset.bucketing or profile.dataset.resolution % family.usual_size_multiple:
        step = size_multiple(source)
    if profile.dataset.bucketing:
        warnings += [Problem(key, message) for key, message in resolution_warnings(profile.dataset, step)]
    try:
        family.check_profile(profile, step)
    except SettingsRefusedError as error:
        refused = [Problem(key, f"{message} (as a {family.label} model)") for key, message in error.refused]
        return FamilySettings(refused, warnings, known is not None)
    return FamilySettings([], warnings, known is not None)


def model_part_problems(model: ModelSection) -> list[Problem]:
    """The parts training reads that the local diffusers folder ``model.pretrained`` lacks (a partial copy or
    download): what this machine lacks, said before the run loads the parts it has. ``model``: the profile's model
    section (the wizard asks of its draft's alone)."""
    source = model.pretrained
    folder = local_path(source)
    if model_kind(source) != "diffusers" or not holds_model_index(folder):
        return []  # not a folder, or not a model: model_source_problems says so
    missing = missing_parts(folder, vae=model.vae, tokenizer=model.tokenizer)
    return [Problem("model.pretrained", missing_parts_message(source, missing))] if missing else []


def model_load_problems(model: ModelSection) -> list[Problem]:
    """What stops ``model.pretrained`` from loading, as `dbtui validate` says it: a damaged file or one that is no base
    model, a folder that is no model or lacks a part, a misspelt built-in name, a web address, a path on Windows. A local
    path that is not on this machine is none of them, nor is a hub id: a profile written for the machine to rent names
    one ("data/models/sd15" relative to where it runs), and its family is guessed by name. A web address or a Windows
    path is neither: no machine to rent has it (SDXL's page, or 'C:\\models\\sdxl_base.safetensors', was advised SDXL's
    presets by `dbtui hardware --profile`). ``model``: the profile's model section, which the wizard's draft has before
    the rest of it is valid."""
    from engine.dataset.profile_paths import is_on_no_machine, model_source_problems
    from engine.memory.absent_model import is_absent

    source = model.pretrained
    if (model_kind(source) == "hub" or is_absent(source)) and not is_on_no_machine(source):
        return []
    return model_source_problems(source, model.vae) + model_part_problems(model)


def resolution_problems(profile: Any) -> list[Problem]:
    """dataset.resolution far from the model's own size (above 1.5× or below half of it), where that size is known
    here, or its family's usual size where a hub id not downloaded names it (``guessed_by_name``, as the wizard's Model
    step guesses it): it trains, but not as the user likely means."""
    source, size = profile.model.pretrained, profile.dataset.resolution
    native = native_size(source)
    guess = guessed_by_name(source) if native is None and model_kind(source) == "hub" else None
    made = "this model was made for" if guess is None else "this model was likely made for (a guess by its name)"
    native = native if guess is None else guess[1]
    effect = None if native is None else resolution_effect(size, native)
    if effect is None:
        return []
    # "16× smaller than", not "0.062× the": a ratio below 1 reads as a number to work out. One rounded to the rule's
    # bound is told as the rule says it: 504 px of 1024 read "2× smaller", where the warning starts below half.
    if size > native:
        ratio = f"{size / native:.2g}× the" if float(f"{size / native:.2g}") > 1.5 else "more than 1.5× the"
    else:
        ratio = f"{native / size:.2g}× smaller than the" if float(f"{native / size:.2g}") > 2 else "less than half the"
    return [Problem("dataset.resolution", f"{size} px is {ratio} {native} px {made}: {effect}; train at {native} px, "
                                          "or near it")]


def resolution_effect(size: object, native: int) -> str | None:
    """What training at ``size`` px does to a model made for ``native`` px, where it is far from it (above 1.5× or below
    half of it); None near it, and for a size the profile refuses (0, -3, "768px": its own problem says so, where the
    Model step had said "At 0 px its images lose detail"). The Model step says it too."""
    if not takes_resolution(size) or native / 2 <= size <= native * 1.5:
        return None
    if size > native:
        return "each step costs far more memory and time, and its images may repeat parts of the subject"
    return "its images lose detail, and the model drifts from what it learned"


def takes_resolution(size: object) -> bool:
    """Whether the profile takes ``size`` as dataset.resolution, by the schema's own rule for it."""
    from pydantic import TypeAdapter, ValidationError

    from engine.profile.schema import DatasetSection

    field = DatasetSection.model_fields["resolution"]
    try:
        TypeAdapter(Annotated[field.annotation, *field.metadata]).validate_python(size, strict=True)
    except ValidationError:
        return False
    return True
