"""Two profiles compared setting by setting: what a resume, or a machine of the run, trains otherwise."""

from __future__ import annotations

import json
from typing import Any

from engine.profile.schema import Profile


def flat_settings(profile: Profile) -> dict[str, Any]:
    """The profile's settings as dotted keys (``training.clip_skip``, ``concepts[0].instance_dir``), each in its JSON
    form. The LoRA and flow-matching options are those in force: a section left out trains its defaults, so it is
    the same as that section written with them (as None, it was every option "unset → default", a change that was
    none)."""
    flat: dict[str, Any] = {}

    def walk(value: Any, key: str) -> None:
        if isinstance(value, dict):
            for name, inner in value.items():
                walk(inner, f"{key}.{name}" if key else name)
        elif isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
            for index, inner in enumerate(value):
                walk(inner, f"{key}[{index}]")
        else:
            flat[key] = value

    data = profile.model_dump(mode="json")
    data["training"]["lora"] = profile.lora.model_dump(mode="json")
    data["training"]["flow"] = profile.flow.model_dump(mode="json")
    walk(data, "")
    return flat


def changed_settings(before: Profile, now: Profile) -> list[tuple[str, Any, Any]]:
    """(key, value before, value now) for every setting whose value differs, in the schema's order; a key that only
    one of them has (a concept more, a section set) has None on the other side."""
    was, is_now = flat_settings(before), flat_settings(now)
    keys = list(was) + [key for key in is_now if key not in was]
    return [(key, was.get(key), is_now.get(key)) for key in keys if was.get(key) != is_now.get(key)]


def shown_value(value: Any) -> str:
    """A value as the profile's TOML writes it (``false``, ``"text"``, ``[1, 2]``); None, which TOML cannot hold, as
    ``unset``."""
    return "unset" if value is None else json.dumps(value, ensure_ascii=False)


def said_changes(changes: list[tuple[str, Any, Any]]) -> str:
    """``key: before → now`` for each change, joined by "; "."""
    return "; ".join(f"{key}: {shown_value(was)} → {shown_value(now)}" for key, was, now in changes)
