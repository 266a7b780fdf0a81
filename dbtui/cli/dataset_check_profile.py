"""``dbtui dataset check --profile``: which concepts are checked, each with the settings the profile gives it."""

from __future__ import annotations

import os
from typing import Any


def profile_checks(profile: Any, folder: str | None, concept: int | None,
                   readers: Any) -> list[tuple[str | None, str | None, dict[str, Any]]]:
    """(the profile's key for the folder checked, None for FOLDER; a heading naming the concept where several are
    checked; ``check_dataset``'s arguments) for each concept checked. FOLDER with no --concept takes the settings of
    the concept whose folder it is: checked under every concept's caption mode and prompt, one folder was reported
    once clean and once full of errors, neither saying whose settings judged it."""
    from engine.dataset import DatasetError, concept_settings

    count = len(profile.concepts)
    if concept is not None and not 0 <= concept < count:
        raise DatasetError(f"--concept {concept}: the profile has {count} concept(s), numbered 0 to {count - 1}")
    indices = [concept] if concept is not None else list(range(count))
    settings = {index: concept_settings(profile, index, readers=readers) for index in indices}
    if folder and len(indices) > 1:
        here = os.path.realpath(folder)
        indices = [index for index in indices if os.path.realpath(settings[index]["folder"]) == here]
        if len(indices) != 1:
            raise DatasetError(f"{folder}: the profile has {count} concepts, each with its own caption mode, prompt "
                               f"and class images; add --concept N (0 to {count - 1}) to say whose settings check it")
    checks: list[tuple[str | None, str | None, dict[str, Any]]] = []
    for index in indices:
        heading = f"concepts.{index}: {settings[index]['folder']}" if len(indices) > 1 else None
        if folder:
            settings[index]["folder"] = folder
        checks.append((None if folder else f"concepts.{index}.instance_dir", heading, settings[index]))
    return checks
