"""A hub id downloads the parts a diffusers folder loads, never the repo's other copies of the model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

FLUX_REPO = [  # black-forest-labs/FLUX.1-dev's files (abridged)
    "model_index.json", "flux1-dev.safetensors", "ae.safetensors", "README.md",
    "transformer/config.json", "transformer/diffusion_pytorch_model-00001-of-00003.safetensors",
    "transformer/diffusion_pytorch_model.safetensors.index.json", "vae/config.json",
    "vae/diffusion_pytorch_model.safetensors", "text_encoder_2/model-00001-of-00002.safetensors",
    "tokenizer_2/spiece.model", "tokenizer_2/tokenizer.json", "tokenizer/merges.txt", "tokenizer/vocab.json",
    "scheduler/scheduler_config.json",
]
SD15_EXTRAS = ["v1-5-pruned.safetensors", "unet/diffusion_pytorch_model.fp16.safetensors",
               "unet/diffusion_pytorch_model.non_ema.safetensors", "unet/diffusion_pytorch_model.safetensors"]


def test_only_the_parts_folders_are_downloaded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import huggingface_hub
    from huggingface_hub.utils import filter_repo_objects

    from engine.models import loading

    asked: list[dict[str, Any]] = []

    def fake_snapshot_download(repo_id: str, **kwargs: Any) -> str:
        asked.append(kwargs)
        return str(tmp_path)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    assert loading._from_hub("black-forest-labs/FLUX.1-dev", None) == tmp_path
    kept = set(filter_repo_objects(FLUX_REPO + SD15_EXTRAS, allow_patterns=asked[0]["allow_patterns"],
                                   ignore_patterns=asked[0]["ignore_patterns"]))
    assert kept == {f for f in FLUX_REPO if "/" in f or f == "model_index.json"} | {"unet/diffusion_pytorch_model.safetensors"}


@pytest.mark.parametrize(("offline", "raised", "cause"), [
    (True, None, "offline"),  # HF_HUB_OFFLINE=1: no download is tried
    (False, "GatedRepoError", "GatedRepoError"),
    (False, "ConnectionError", "ConnectionError"),
])
def test_a_repo_neither_cached_nor_downloadable_says_why(monkeypatch: pytest.MonkeyPatch, offline: bool,
                                                         raised: str | None, cause: str) -> None:
    import huggingface_hub
    from huggingface_hub.errors import GatedRepoError, LocalEntryNotFoundError

    from engine.support.hub_snapshot import HubUnavailable, hub_snapshot

    import requests

    refused = requests.Response()
    refused.status_code, refused.url = 403, "https://huggingface.co/owner/model"
    errors = {"GatedRepoError": GatedRepoError("gated", response=refused), "ConnectionError": ConnectionError("down")}
    tries: list[bool] = []

    def fake_snapshot_download(repo_id: str, local_files_only: bool = False, **kwargs: Any) -> str:
        tries.append(local_files_only)
        if local_files_only:
            raise LocalEntryNotFoundError("not cached")
        raise errors[raised]

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    monkeypatch.setattr(huggingface_hub.HfApi, "repo_info", lambda *args, **kwargs: None)  # the hub answers
    monkeypatch.setenv("HF_HUB_OFFLINE", "1" if offline else "0")
    with pytest.raises(HubUnavailable) as unavailable:
        hub_snapshot("owner/model", allow_patterns=["*.json"])
    assert unavailable.value.cause == cause
    assert tries == ([True] if offline else [True, False])


def test_a_malformed_repo_id_is_named_so(monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.models import loading
    from engine.models.parts import ModelNotFoundError

    with pytest.raises(ModelNotFoundError, match="is not a local folder, a model file or a valid hub id"):
        loading._from_hub("not a//valid id", None)


def test_a_hub_that_holds_the_connection_is_given_up_on_in_seconds(silent_hub: str) -> None:
    """Behind a firewall that accepts and never answers, `dbtui run` and `fit --estimate-only` of a hub id not in
    the cache waited for ever (huggingface_hub asks for the repo's files with no time limit)."""
    import time

    from engine.support.hub_snapshot import HubUnavailable, hub_snapshot

    started = time.monotonic()
    with pytest.raises(HubUnavailable) as unavailable:
        hub_snapshot("owner/not-cached-model", allow_patterns=["*.json"])
    assert time.monotonic() - started < 20
    assert unavailable.value.cause == "ReadTimeout"


@pytest.mark.parametrize(("cause", "said"), [("RepositoryNotFoundError", "is not on the hub"),
                                             ("GatedRepoError", "is a gated repo on the hub")])
def test_a_repo_the_hub_has_not_is_not_told_as_a_hub_out_of_reach(cause: str, said: str,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The load of a wrong, private or gated hub id said "the hub cannot be reached (RepositoryNotFoundError)"."""
    from engine.models import loading
    from engine.models.parts import ModelNotFoundError
    from engine.support import hub_snapshot

    def refused(*args: Any, **kwargs: Any) -> None:
        raise hub_snapshot.HubUnavailable(cause)

    monkeypatch.setattr(hub_snapshot, "hub_snapshot", refused)
    with pytest.raises(ModelNotFoundError) as unavailable:
        loading._from_hub("someone/model", None)
    assert said in str(unavailable.value) and "cannot be reached" not in str(unavailable.value)
    assert "`hf auth login`" in str(unavailable.value)
