"""A hub id the run cannot get: not in the Hugging Face cache while HF_HUB_OFFLINE=1 forbids downloading it."""

from __future__ import annotations

from typing import Any

from engine.profile.model_source import model_kind
from engine.profile.problems import Problem


def offline_model_problems(model: Any) -> list[Problem]:
    """``model.pretrained`` as a hub id this machine has no copy of, offline: the run started, made its folder and
    failed at the load. Online, a hub id not cached is downloaded by the run (a network probe here could not tell a
    slow hub from none), so it is said only offline, the cache alone deciding, as the run's own lookup does."""
    from engine.support.hub_snapshot import HubUnavailable, hub_offline, hub_snapshot, offline_model_advice

    source = model.pretrained
    if not hub_offline() or model_kind(source) != "hub":
        return []
    try:
        hub_snapshot(source, revision=model.revision, allow_patterns=["model_index.json"])
    except HubUnavailable as unavailable:
        if unavailable.cause == "offline":  # a malformed id: model_source_problems says so
            return [Problem("model.pretrained", offline_model_advice(source))]
    return []
