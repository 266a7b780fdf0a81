"""What marks a folder as a set of class images dbtui generated: the manifest its generator writes in it (the settings
that made the images, and their names), whose settings hash to the folder's name. Not its name alone: a folder of the
user's own may be named generated-…, and a link with any name may lead into a set; nor the manifest alone: another
tool's manifest.json in a user's class folder may hold a model, a prompt and a seed too."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from engine.support.json_file import read_json_object

MANIFEST = "manifest.json"
# The manifest's hash of the model's weight files (engine.training.model_weights): not among the settings that name a
# set, which only the file system is asked for.
DIGEST = "weights_digest"
# The names engine.training.class_images gives a set's folder and its images.
SET_NAME = re.compile(r"generated-[0-9a-f]{10}")
IMAGE_NAME = re.compile(r"class_\d{5,}\.png")
# What every generated set's manifest holds (engine.training.class_images.settings_of, and the images): a checkpoint's
# manifest.json, or one of the user's, holds other things.
_MARKS = ("model", "prompt", "seed", "images")


def generated_folder(folder: Path | str, settings: dict[str, Any]) -> Path:
    """Where the class folder ``folder`` keeps the images ``settings`` make: a sub-folder named by their hash."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]
    return Path(folder) / f"generated-{digest}"


def is_generated_set(folder: Path | str) -> bool:
    manifest = read_json_object(Path(folder) / MANIFEST)
    if not all(key in manifest for key in _MARKS) or not isinstance(manifest["images"], list):
        return False
    return generated_folder(Path(folder).parent, recorded_settings(manifest)).name == Path(folder).name


def recorded_settings(manifest: dict[str, Any]) -> dict[str, Any]:
    """The settings a set's manifest records, which name its folder: less its images and the model's hash."""
    return {key: value for key, value in manifest.items() if key not in ("images", DIGEST)}


def generated_set_holding(folder: str) -> Path | None:
    """The generated set that ``folder`` is or is inside, links followed; None when it is in none. Along the path as
    written too: a set moved to another disk and linked back under its name is still the generator's (it finds the set
    by that name), while the folder the link leads to is named otherwise."""
    written = Path(os.path.abspath(os.path.expanduser(folder)))
    real = Path(os.path.realpath(written))
    return next((place for place in (real, *real.parents, written, *written.parents) if is_generated_set(place)), None)


def is_dbtui_class_images(folder: Path | str) -> bool:
    """A generated set, or one whose first images are being made before its manifest is written (by another run now,
    or by one that crashed): named as the generator names a set and holding nothing but the images it names (hidden
    files are its temporaries). A folder of the user's own named so holds other names."""
    folder = Path(folder)
    if is_generated_set(folder):
        return True
    return SET_NAME.fullmatch(folder.name) is not None and folder.is_dir() and all(
        entry.name.startswith(".") or IMAGE_NAME.fullmatch(entry.name) for entry in folder.iterdir())
