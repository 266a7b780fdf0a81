"""What kind of model ``model.pretrained`` names, told from its text alone.

Here, in the light profile package, so that the wizard, the CLI and the model loader read the
same answer without importing torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from engine.profile.fields import expanded_path

ModelKind = Literal["builtin", "diffusers", "single-file", "hub"]
SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin")
BUILTIN_PREFIX = "builtin:"


def read_source(source: str) -> str:
    """``model.pretrained`` as written (the wizard's draft, "$MODELS/x", "a$$b") read as the profile reads it; as
    written where it names nothing here (the check of the model then says it is missing)."""
    try:
        return expanded_path(source)
    except ValueError:
        return source


def local_path(source: str) -> Path:
    """The path ``source``, a profile's ``model.pretrained`` as read, names: not read again, where "a$$b" read as a$b
    would be another folder (the wizard's draft is read first: ``read_source``)."""
    return Path(source).expanduser()


def model_kind(source: str) -> ModelKind:
    """A built-in tiny model, a diffusers folder, a single checkpoint file (a file, whatever its name) or a hub id (no
    imports, no disk beyond a stat). A path that does not exist yet still counts as a folder when it is
    written as one (``./``, ``/``, ``~``, ``$VAR``), so the user hears "not found" rather than a hub lookup."""
    if source.startswith(BUILTIN_PREFIX):
        return "builtin"
    path = local_path(source)
    # A file of another name too ("models/mymodel"): the run converts it whatever its name, the format told from its bytes.
    if path.suffix.lower() in SINGLE_FILE_SUFFIXES or path.is_file():
        return "single-file"
    if path.exists() or source.startswith((".", "/", "~", "$")):  # a local file of another kind is no hub id either
        return "diffusers"
    return "hub"


def holds_model_index(folder: Path) -> bool:
    """Whether ``folder`` holds a model_index.json; False too where this user may not look in it (Python 3.11's is_file
    raises PermissionError there): model_source_problems says why."""
    try:
        return (folder / "model_index.json").is_file()
    except OSError:
        return False
