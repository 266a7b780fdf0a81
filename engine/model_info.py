"""What a model source is, as the wizard and the CLI show it: its kind, family, folder and native size.

One engine entry point for both user interfaces, so that neither reaches into engine.models or
engine.convert on its own. It reads configs and file headers only: no torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.errors import DbtuiError
from engine.profile.model_source import ModelKind, model_kind


@dataclass(frozen=True)
class ModelDescription:
    source: str
    kind: ModelKind
    family: str  # what the model is, in words
    folder: str | None  # the diffusers folder a profile can use; None until a single file is converted
    supported: bool = True
    resolution: int | None = None  # the image size the model was made for, when known


def describe_folder(folder: Path) -> tuple[str, bool]:
    """(the family of a diffusers folder in words, whether dbtui trains it)."""
    from engine.models.registry import family_of

    try:
        return family_of(folder).label, True
    except DbtuiError as error:
        return str(error), False


def describe_model(source: str) -> ModelDescription:
    """Describe ``model.pretrained`` before anything is downloaded or converted."""
    from engine.models.loading import native_resolution

    kind = model_kind(source)
    if kind == "builtin":
        from engine.builtin import resolve_model

        folder = resolve_model(source)
        family, supported = describe_folder(Path(folder))
        return ModelDescription(source, kind, f"built-in tiny {family} (random or demo weights)", folder, supported,
                                native_resolution(folder))
    if kind == "diffusers":
        folder = Path(source).expanduser()
        if not (folder / "model_index.json").is_file():
            return ModelDescription(source, kind, "not a diffusers folder (no model_index.json)", None, supported=False)
        family, supported = describe_folder(folder)
        return ModelDescription(source, kind, f"diffusers folder: {family}", str(folder), supported, native_resolution(folder))
    if kind == "hub":
        return ModelDescription(source, kind, "Hugging Face hub id: downloaded when training starts", source)
    from engine.convert import detect_family, read_checkpoint

    detected = detect_family(read_checkpoint(source).state_dict)
    return ModelDescription(source, kind, detected.description, None, supported=detected.supported,
                            resolution=detected.resolution)
