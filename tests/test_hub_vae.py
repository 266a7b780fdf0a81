"""model.vae as a hub id: a VAE repo keeps its config and weights at its top (stabilityai/sd-vae-ft-mse), a model repo
in its vae/ folder; the download took only files inside folders, so a VAE repo's were never downloaded."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest


def _hub_of(monkeypatch: pytest.MonkeyPatch, repo: Path, tmp_path: Path) -> list[dict[str, Any]]:
    """The hub as one repo, the files of ``repo``: snapshot_download copies those its patterns keep, as the hub does.
    Returns the keyword arguments of each download."""
    import huggingface_hub
    from huggingface_hub.errors import LocalEntryNotFoundError
    from huggingface_hub.utils import filter_repo_objects

    asked: list[dict[str, Any]] = []

    def fake_snapshot_download(repo_id: str, local_files_only: bool = False, **kwargs: Any) -> str:
        if local_files_only:
            raise LocalEntryNotFoundError("not cached")
        asked.append(kwargs)
        files = [str(f.relative_to(repo)) for f in repo.rglob("*") if f.is_file()]
        snapshot = tmp_path / "snapshot"
        for name in filter_repo_objects(files, allow_patterns=kwargs["allow_patterns"],
                                        ignore_patterns=kwargs["ignore_patterns"]):
            (snapshot / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(repo / name, snapshot / name)
        snapshot.mkdir(exist_ok=True)
        return str(snapshot)

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    monkeypatch.setattr(huggingface_hub.HfApi, "repo_info", lambda *args, **kwargs: None)  # the hub answers
    return asked


@pytest.mark.parametrize("layout", ["vae repo", "model repo"])
def test_a_hub_vae_downloads_and_loads_from_either_layout(layout: str, tiny_sd1: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.models.parts import load_vae

    repo = tmp_path / "repo"
    if layout == "vae repo":  # as stabilityai/sd-vae-ft-mse: the VAE's files at the top, beside other copies
        shutil.copytree(tiny_sd1 / "vae", repo)
        (repo / "sdxl_vae.safetensors").write_bytes(b"another copy, never read")
    else:
        shutil.copytree(tiny_sd1, repo)
        (repo / "v1-5-pruned.safetensors").write_bytes(b"the whole model, never read")
    asked = _hub_of(monkeypatch, repo, tmp_path)
    vae = load_vae(tiny_sd1, "someone/vae")
    assert vae.config.latent_channels == 4
    got = {str(f.relative_to(tmp_path / "snapshot")) for f in (tmp_path / "snapshot").rglob("*") if f.is_file()}
    prefix = "" if layout == "vae repo" else "vae/"
    assert got == {f"{prefix}config.json", f"{prefix}diffusion_pytorch_model.safetensors"}
    assert len(asked) == 1
