"""The architecture of a model that is not on this machine, guessed from its name: the "before you rent" case.

A profile written for the rented machine names a path there (/workspace/models/juggernautXL_v9.safetensors).
Its family is guessed from the name as ``dbtui hardware --profile`` guesses it (``likely_family``: "XL" for SDXL,
"flux" for Flux), and the estimate is made on that family's published architecture, the one the meter uses for
the family's base model offline. SD1.x and SD2.x differ (text encoder, attention), and most names say neither:
those are guessed only where the name says which, and otherwise the user hears how to get an estimate.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from engine.memory.architecture import Architecture, ArchitectureUnavailableError

# What each guess is estimated as: (for people, the base model whose architecture it is, engine/convert/configs' name).
PUBLISHED = {
    "sd1": ("SD1.5", "stable-diffusion-v1-5/stable-diffusion-v1-5", "sd1"),
    "sd2": ("SD2.1", "stabilityai/stable-diffusion-2-1-base", "sd2"),
    "sdxl": ("SDXL base", "stabilityai/stable-diffusion-xl-base-1.0", "sdxl"),
    "flux": ("FLUX.1 [dev]", "black-forest-labs/FLUX.1-dev", ""),
    "flux-schnell": ("FLUX.1 [schnell]", "black-forest-labs/FLUX.1-schnell", ""),
}
# "sd15", "sd-v1-5", "stable-diffusion-v1-4", "v1-5-pruned"; "sd21", "sd2.1", "stable-diffusion-2-base", "v2-1_768".
_SD1 = re.compile(r"(sd|diffusion)[-_ .]?v?1(?:[-_.]?[45])?(?!\d)|v1[-_.][45](?!\d)")
_SD2 = re.compile(r"(sd|diffusion)[-_ .]?v?2(?:[-_.]?[01])?(?!\d)|v2[-_.][01](?!\d)")

# Names of models dbtui refuses, or of another family, that the guesses above would take for a base model: FLUX.2
# (far larger), FLUX.1 Fill/Depth/Canny/Redux/Kontext (other inputs), Chroma, the SDXL refiner, SSD-1B ("sd-1"),
# PixArt-…-XL-2 and t5xxl ("XL"), and a text encoder, VAE or LoRA file. An absent one is not guessed: a confident
# estimate on the wrong architecture is worse than the error that says how to get one.
_NOT_A_BASE_MODEL = re.compile(
    r"flux[-_. ]?2|(?<![a-z])(fill|depth|canny|redux|kontext|inpaint(ing)?)(?![a-z])|chroma|refiner|ssd[-_. ]?1b"
    r"|pixart|(?<![a-z0-9])(t5|umt5)|(?<![a-z])clip|(?<!baked)(?<!baked[-_ ])(?<![a-z])vae(?![a-z])|^ae\.|^ae$"
    r"|lora(?![a-z])|locon|lycoris")


def is_absent(source: str) -> bool:
    """Whether ``model.pretrained`` is a local path (a file or a folder) that does not exist on this machine."""
    from engine.profile.model_source import local_path, model_kind

    return model_kind(source) in ("single-file", "diffusers") and not local_path(source).expanduser().exists()


def guessed_family(source: str) -> str | None:
    """A key of ``PUBLISHED`` from the model's name, or None where the name does not say the family or names a model
    that is no base model of one (``_NOT_A_BASE_MODEL``)."""
    from engine.model_info import likely_family

    name = Path(source).name.lower()
    if _NOT_A_BASE_MODEL.search(name):
        return None
    family = likely_family(source)
    if family == "flux":
        return "flux-schnell" if "schnell" in name else "flux"
    if family == "sdxl":
        return "sdxl"
    # likely_family's "sd" is its default as well as its guess: only a name that says the version counts.
    return "sd1" if _SD1.search(name) else "sd2" if _SD2.search(name) else None


def _set_base(hub_id: str) -> str:
    return f"--set 'model.pretrained=\"{hub_id}\"'"


def absent_architecture(source: str, relative: bool = False) -> Architecture:
    """The published architecture of the family ``source``'s name says, with a note saying so; a clear error where the
    name says no family. ``relative``: a relative name found neither as a folder here nor (where it can be a hub id)
    in the Hugging Face cache or on the hub."""
    from engine.convert.to_diffusers import CONFIGS
    from engine.memory.architecture import from_folder
    from engine.memory.flux_architecture import flux_architecture

    guess = guessed_family(source)
    if guess is None:
        why = ("names no base model dbtui trains (FLUX.2, FLUX.1 Fill or Depth, Chroma, the SDXL refiner, a text "
               "encoder, VAE or LoRA …)" if _NOT_A_BASE_MODEL.search(Path(source).name.lower())
               else "does not say its family (SD1.x, SD2.x, SDXL or Flux)")
        raise ArchitectureUnavailableError(
            f"'{source}' does not exist on this machine and its name {why}: to estimate it here, name its family's base model instead, e.g. "
            f"{_set_base(PUBLISHED['sdxl'][1])} for an SDXL model or {_set_base(PUBLISHED['sd1'][1])} for an SD1.5 one "
            "(or estimate where the model is)")
    who, hub_id, configs = PUBLISHED[guess]
    arch = from_folder(CONFIGS / configs) if configs else flux_architecture("schnell" if guess == "flux-schnell" else "dev")
    other = PUBLISHED["sd1" if guess == "sdxl" else "sdxl"]
    absent = f"'{source}' is {where_read(source)}" if relative else f"'{source}' does not exist on this machine"
    note = (f"{absent}{_typo_hint(source)}: estimated as {who}'s published architecture (guessed from its name; if "
            f"wrong, name its family's base model, e.g. {_set_base(other[1])} for {other[0]})")
    return dataclasses.replace(arch, label=f"{who}'s published architecture ({Path(source).name}, not on this machine)",
                               note=note, guessed=True)


def where_read(source: str) -> str:
    """How a relative name not found here was read: as a folder of the working folder, and as a hub id not downloaded
    where it can be one ("models/flux"; "data/models/sd15" is a folder only)."""
    from engine.support.hub_snapshot import is_hub_id

    folder = f"a folder here (read from {Path.cwd()})"
    return f"neither {folder} nor a hub model downloaded here" if is_hub_id(source) else f"not {folder}"


def _typo_hint(source: str) -> str:
    """Where the model's folder is on this machine, the path more likely has a typo than names the machine to rent."""
    from engine.profile.model_source import local_path

    folder = local_path(source).parent
    return f" (check the path: its folder '{folder}' is here)" if folder != folder.parent and folder.is_dir() else ""
