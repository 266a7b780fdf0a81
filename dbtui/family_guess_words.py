"""The sentence that says a model's family was guessed from its name, as `dbtui hardware --profile` and the wizard's
Hardware and Parameters steps say it: one wording for the CLI and the wizard."""

from __future__ import annotations

FAMILY_NAMES = {"sd": "SD1.x", "sd2": "SD2.x", "sdxl": "SDXL", "flux": "Flux"}


def guessed_from_name(source: str, family: str) -> str | None:
    """None where the model's own files gave its ``family``; otherwise the sentence that says it was guessed from its
    name (its files are not on this machine, or do not say it)."""
    from engine.memory.absent_model import guessed_family, where_read
    from engine.memory.preset_table import base_family
    from engine.model_info import family_from_files
    from engine.profile.model_source import local_path, model_kind

    family = base_family(family)  # "sd-1024": SD1.x, judged at the size it trains
    if family_from_files(source) is not None:
        return None
    # A relative name not here ("models/flux", "data/models/flux") is said as `dbtui fit` reads it.
    absent = f"it is {where_read(source)}" if model_kind(source) == "hub" else "it is not on this machine"
    why = "its files do not say its family" if local_path(source).expanduser().exists() else absent
    # advice_family's default "sd" is a guess only where the name says SD1 (v1-5, sd15): otherwise it is the fallback.
    if family == "sd" and guessed_family(source) != "sd1":
        return (f"The model '{source}': {why}, and its name says neither SDXL nor Flux nor SD2, so this advice is for "
                "SD1.x, by SD1.5's figures; for SD2.x ask with --family sd2, for another family with --family sdxl or "
                "--family flux.")
    return f"The model '{source}': {why}, so its family, {FAMILY_NAMES[family]}, is guessed from its name."
