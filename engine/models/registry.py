"""The families dbtui trains, and which one a diffusers folder is."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine.errors import DbtuiError
from engine.models.family import Family
from engine.models.flux import Flux
from engine.models.sd import StableDiffusion
from engine.models.sdxl import StableDiffusionXL

FAMILIES: tuple[Family, ...] = (StableDiffusion(), StableDiffusionXL(), Flux())


class UnsupportedFamilyError(DbtuiError):
    """A diffusers folder of a model family dbtui does not train."""


def read_model_index(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((Path(folder) / "model_index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise UnsupportedFamilyError(f"'{folder}' has no readable model_index.json, so it is not a diffusers model ({error})") from None


def family_of(folder: Path) -> Family:
    """The family of a diffusers folder, from its model_index.json."""
    index = read_model_index(folder)
    for family in FAMILIES:
        if family.recognises(index):
            return family
    kind = index.get("_class_name", "an unnamed pipeline")
    raise UnsupportedFamilyError(
        f"'{folder}' is a {kind}; dbtui trains " + ", ".join(f.label for f in FAMILIES) + " models"
    )


def family_of_pipeline(pipe: Any) -> Family:
    """The family of a diffusers pipeline object, recognised as its saved model_index.json would be."""
    index = {**dict(pipe.config), "_class_name": type(pipe).__name__}
    for family in FAMILIES:
        if family.recognises(index):
            return family
    raise UnsupportedFamilyError(f"a {type(pipe).__name__} is not a pipeline of a family dbtui trains")


def family_named(family_id: str) -> Family:
    for family in FAMILIES:
        if family.id == family_id:
            return family
    raise KeyError(family_id)
