"""The wizard's conversion of a single file: which folder it goes to, and a conversion already there reused.

The entry point for the UI, as engine/model_info.py is for describing a model: the UI reaches neither
engine.models nor engine.convert on its own. Each conversion notes its source (engine/models/conversion_note.py),
so that converting the same file again finds its folder rather than failing on it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import count
from pathlib import Path

from engine.events import Event
from engine.models.conversion_lock import converting_into, waiting_said
from engine.models.conversion_note import conversion_source, holds_conversion_of, note_conversion, sampled_identity

DEFAULT_BASE = Path("models")


@dataclass(frozen=True)
class ConversionTarget:
    folder: Path
    holds_it: bool  # the folder holds this file's conversion already: the profile can use it as it is


def _flux_parts(components: str | None, part_files: dict[str, str] | None) -> dict[str, object]:
    """What a Flux conversion took its other parts from, as noted: a folder made from other parts is another model.
    Each part file as it stands (one written over at its path is another part), and a components folder by where it
    resolves to (~/flux and /home/u/flux are one folder; a relative path typed elsewhere is another); a hub id as is."""
    parts = {slot: _part(Path(file).expanduser()) for slot, file in (part_files or {}).items()}
    folder = Path(components).expanduser() if components else None
    named = str(folder.resolve()) if folder is not None and folder.is_dir() else components
    return {"flux_parts": {"components": named, **parts} if components or parts else None}


def _part(file: Path) -> dict[str, object]:
    # A file not there (yet: the user is typing its name) has only its path; converting from it fails.
    return sampled_identity(file) if file.is_file() else {"path": str(file.resolve())}


def _free(folder: Path) -> bool:
    if folder.is_symlink():
        return False
    return not folder.exists() or (folder.is_dir() and not any(folder.iterdir()))


def _offered(folder: Path, path: Path, parts: dict[str, object]) -> ConversionTarget | None:
    if holds_conversion_of(folder, path, parts):
        return ConversionTarget(folder, True)
    return ConversionTarget(folder, False) if _free(folder) else None


def conversion_target(source: str, base: Path = DEFAULT_BASE, *, components: str | None = None,
                      part_files: dict[str, str] | None = None, into: Path | None = None) -> ConversionTarget:
    """Where the wizard suggests converting ``source``: BASE/STEM-diffusers, else (it holds another model) the first
    of STEM-diffusers-2, -3… that is free or holds this file's conversion. ``into``: the folder the user named
    instead, told whether it holds the conversion. A Flux file's conversion is its only with the same ``components``
    and ``part_files`` (import_model's): one from other parts is another model."""
    path = Path(source).expanduser()
    parts = _flux_parts(components, part_files)
    if into is not None:
        return ConversionTarget(into, holds_conversion_of(Path(into).expanduser(), path, parts))
    folders = (base / (f"{path.stem}-diffusers" if number == 1 else f"{path.stem}-diffusers-{number}")
               for number in count(1))
    return next(target for target in (_offered(folder, path, parts) for folder in folders) if target is not None)


def import_model(source: str, out_dir: Path, emit: Callable[[Event], None] | None = None, components: str | None = None,
                 part_files: dict[str, str] | None = None, vae: str | None = None) -> Path:
    """``source`` converted into ``out_dir``, which is returned; one that holds its conversion already (from the same
    file as it stands, and the same Flux parts) is returned as it is. ``vae``: model.vae, which stands in for the VAE
    a Stable Diffusion file lacks."""
    from engine.convert import import_single_file
    from engine.convert.flux_part_files import FluxPartFiles
    from engine.models.loading import standin_vae_folder

    path, out_dir = Path(source).expanduser(), Path(out_dir).expanduser()
    parts = _flux_parts(components, part_files)
    with converting_into(out_dir, waiting_said(emit, path, out_dir)):  # then finds the other's conversion, below
        if holds_conversion_of(out_dir, path, parts):
            return out_dir
        files = FluxPartFiles(**{slot: Path(file) for slot, file in (part_files or {}).items()})
        source = conversion_source(path)  # before converting: a file replaced meanwhile is not the one converted
        # Noted inside before it is renamed into place: a kill between the two left a folder without its note.
        return Path(import_single_file(path, out_dir, emit=emit, components=components, part_files=files,
                                       vae=standin_vae_folder(vae),
                                       before_publish=lambda made: note_conversion(made, source, parts)))
