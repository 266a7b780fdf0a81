"""What marks a folder as a set of class images dbtui generated: the manifest its generator writes in it (the settings
that made the images, and their names), not its name: a folder of the user's own may be named generated-…, and a link
with any name may lead into a set."""

from __future__ import annotations

import os
from pathlib import Path

from engine.support.json_file import read_json_object

MANIFEST = "manifest.json"
# What every generated set's manifest holds (engine.training.class_images.settings_of, and the images): a checkpoint's
# manifest.json, or one of the user's, holds other things.
_MARKS = ("model", "prompt", "seed", "images")


def is_generated_set(folder: Path | str) -> bool:
    manifest = read_json_object(Path(folder) / MANIFEST)
    return all(key in manifest for key in _MARKS) and isinstance(manifest["images"], list)


def generated_set_holding(folder: str) -> Path | None:
    """The generated set that ``folder`` is or is inside, links followed; None when it is in none."""
    real = Path(os.path.realpath(os.path.expanduser(folder)))
    return next((place for place in (real, *real.parents) if is_generated_set(place)), None)
