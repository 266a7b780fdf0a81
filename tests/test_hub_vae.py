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


def _as_bin(folder: Path, name: str = "diffusion_pytorch_model") -> None:
    """``folder``'s weights as an older repo ships them: a .bin alone."""
    import torch
    from safetensors.torch import load_file

    torch.save(load_file(folder / f"{name}.safetensors"), folder / f"{name}.bin")
    (folder / f"{name}.safetensors").unlink()


@pytest.mark.parametrize("layout", ["vae repo", "model repo"])
def test_a_hub_vae_whose_weights_are_a_bin_alone_downloads_and_loads(layout: str, tiny_sd1: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The download took a VAE's .safetensors alone: a repo shipping a .bin only loaded as "no file named
    diffusion_pytorch_model.bin"."""
    from engine.models.parts import load_vae

    repo = tmp_path / "repo"
    shutil.copytree(tiny_sd1 / "vae" if layout == "vae repo" else tiny_sd1, repo)
    _as_bin(repo if layout == "vae repo" else repo / "vae")
    _hub_of(monkeypatch, repo, tmp_path)
    assert load_vae(tiny_sd1, "someone/vae").config.latent_channels == 4


def test_a_hub_model_whose_part_ships_a_bin_alone_downloads_it(tiny_sd1: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A hub model whose UNet is a .bin alone was refused as a folder lacking unet/'s weights ("copy that part from
    where the model came from"), its .bin never downloaded; a part with .safetensors has its .bin left on the hub."""
    from engine.models.folder_parts import missing_parts
    from engine.models.loading import resolve_model_folder

    repo = tmp_path / "repo"
    shutil.copytree(tiny_sd1, repo)
    _as_bin(repo / "unet")
    (repo / "vae" / "diffusion_pytorch_model.bin").write_bytes(b"the same weights again, never read")
    asked = _hub_of(monkeypatch, repo, tmp_path)
    folder = resolve_model_folder("someone/sd1")
    assert missing_parts(folder) == []
    assert (folder / "unet" / "diffusion_pytorch_model.bin").is_file()
    assert not (folder / "vae" / "diffusion_pytorch_model.bin").exists()
    assert len(asked) == 2


def test_a_cached_hub_vae_or_model_whose_weights_are_a_bin_alone_is_not_refused_offline(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the .bin the load downloads where a part has no .safetensors, the pre-run check must take it as the
    weights too: offline, a cached .bin-only VAE or UNet would be refused as not cached."""
    from types import SimpleNamespace

    from huggingface_hub import constants

    from engine.dataset.offline_model import offline_model_problems

    def cached(repo: str, files: list[str]) -> None:
        folder = tmp_path / f"models--{repo.replace('/', '--')}"
        (folder / "refs").mkdir(parents=True)
        (folder / "refs" / "main").write_text("1" * 40)
        for name in files:
            (folder / "snapshots" / ("1" * 40) / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / "snapshots" / ("1" * 40) / name).write_text("{}")

    cached("someone/vae-bin", ["config.json", "diffusion_pytorch_model.bin"])
    cached("someone/vae-configs", ["config.json"])
    cached("someone/sd1-bin", ["model_index.json", "unet/config.json", "unet/diffusion_pytorch_model.bin",
                               "vae/config.json", "vae/diffusion_pytorch_model.safetensors"])
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = SimpleNamespace(pretrained="someone/sd1-bin", revision=None, vae="someone/vae-bin", tokenizer=None)
    assert offline_model_problems(model) == []
    model = SimpleNamespace(pretrained="someone/sd1-bin", revision=None, vae="someone/vae-configs", tokenizer=None)
    assert [problem.key for problem in offline_model_problems(model)] == ["model.vae"]


def test_the_bin_of_a_cached_hub_vae_is_downloaded_at_the_commit_of_its_config(tiny_sd1: Path, tmp_path: Path,
                                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The .bin was asked for by branch again: where the hub's main had moved on since the config was cached (an older
    repo given its .safetensors later), the download made a snapshot of the new commit holding the .bin alone, and the
    load found no config there."""
    import huggingface_hub
    from huggingface_hub.errors import LocalEntryNotFoundError
    from huggingface_hub.utils import filter_repo_objects

    from engine.models.loading import resolve_vae_folder

    repo, cached_commit, main_commit = tmp_path / "repo", "a" * 40, "b" * 40
    shutil.copytree(tiny_sd1 / "vae", repo)
    _as_bin(repo)
    (tmp_path / cached_commit).mkdir()
    shutil.copy(repo / "config.json", tmp_path / cached_commit / "config.json")  # downloaded before main moved on
    files = [str(f.relative_to(repo)) for f in repo.rglob("*") if f.is_file()]

    def fake_snapshot_download(repo_id: str, local_files_only: bool = False, revision: str | None = None,
                               **kwargs: Any) -> str:
        wanted = list(filter_repo_objects(files, allow_patterns=kwargs["allow_patterns"],
                                          ignore_patterns=kwargs["ignore_patterns"]))
        snapshot = tmp_path / (revision or (cached_commit if local_files_only else main_commit))
        if local_files_only:
            if not all((snapshot / name).is_file() for name in wanted):
                raise LocalEntryNotFoundError("not cached")
            return str(snapshot)
        for name in wanted:
            (snapshot / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(repo / name, snapshot / name)
        return str(snapshot)

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    monkeypatch.setattr(huggingface_hub.HfApi, "repo_info", lambda *args, **kwargs: None)  # the hub answers
    folder = resolve_vae_folder("someone/vae")
    assert {f.name for f in folder.iterdir()} == {"config.json", "diffusion_pytorch_model.bin"}
