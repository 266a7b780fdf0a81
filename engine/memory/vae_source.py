"""``model.vae`` as the meter reads it: the config of the VAE the trainer loads in place of the model's own.

The trainer (``engine.models.parts.load_vae``) takes a VAE folder, a model folder or hub id with a vae/ part,
or a built-in model; a single file is refused. The meter reads the same place's config.json, so a model
folder without vae/ beside a model.vae is estimated, and a VAE of another size is counted at its own.
"""

from __future__ import annotations

from pathlib import Path

from engine.memory.architecture import ArchitectureUnavailableError


NOT_HERE_NOTE = "model.vae '{vae}' is not on this machine: estimated with the model's own VAE"


def _config_folder(folder: Path) -> Path:
    """Where a VAE's config.json is, as load_vae reads it: a model's vae/ part where the folder has one."""
    return folder / "vae" if (folder / "vae").is_dir() else folder


def _hub_vae(name: str) -> Path | None:
    """The snapshot of hub id ``name``'s VAE configs (cached or downloaded); None where neither can be had."""
    from engine.support.hub_snapshot import HubUnavailable, hub_snapshot

    try:
        return hub_snapshot(name, allow_patterns=["config.json", "vae/config.json"])
    except HubUnavailable:
        return None


def vae_config_folder(vae: str) -> Path | None:
    """The folder holding the config.json of ``vae`` (model.vae); None where it is a path not on this machine or a hub
    id not to be had here, which the model's own VAE then stands for (``NOT_HERE_NOTE``)."""
    from engine.builtin import resolve_model
    from engine.models.parts import vae_file_message
    from engine.profile.model_source import local_path, model_kind

    kind = model_kind(vae)
    path = _hub_vae(vae) if kind == "hub" else Path(resolve_model(vae)) if kind == "builtin" else local_path(vae)
    if path is None:
        return None
    if path.is_file():
        raise ArchitectureUnavailableError(vae_file_message(vae))
    if not path.is_dir():
        return None
    folder = _config_folder(path)
    if not (folder / "config.json").is_file():
        raise ArchitectureUnavailableError(f"model.vae '{vae}' has no config.json (nor vae/config.json): give a diffusers "
                                           "VAE folder, or a model folder with a vae/ part")
    return folder
