"""What a new draft takes from its model's family once the Model step reads it: the settings whose schema default
that family cannot train well with (Flux in fp16 overflows, and engine/models/flux.py warns of it)."""

from __future__ import annotations

from typing import Any

from dbtui.session import Session

FAMILY_DEFAULTS: dict[str, dict[str, Any]] = {"flux": {"precision.mixed_precision": "bf16"}}


def _own_value(family: str, key: str) -> Any:
    """What a draft for ``family`` holds at ``key`` unless someone chose otherwise: its family default, else the
    schema's (a saved profile names it)."""
    from engine.profile import Profile

    if key in FAMILY_DEFAULTS.get(family, {}):
        return FAMILY_DEFAULTS[family][key]
    section, _, name = key.partition(".")
    return getattr(Profile.model_fields[section].default, name)


def adopt_family_defaults(session: Session) -> None:
    """Give each family default to a draft that names none, and, when another family is checked than the last one, move
    each value still at the last family's own to this family's (Flux's bf16 back to fp16 for an SD model, fp16 to bf16
    for a Flux one). Judged by the values, not by what this session put: a saved draft reopened names every setting, and
    must behave as it did unsaved. A value the user set in this session stays, as does the last tier preset's, and an
    opened profile's until another family is checked. A hub id not downloaded has its name's family, as the problems
    panel warns by (black-forest-labs/FLUX.1-dev in fp16)."""
    before, family = session.checked_family, session.advised_family or ""
    session.checked_family = family
    keys = {key for defaults in FAMILY_DEFAULTS.values() for key in defaults}
    for key in sorted(keys - session.user_set - set(session.preset_left)):
        value = session.get(key)
        if value is None or (before is not None and before != family and value == _own_value(before, key)):
            session.set(key, FAMILY_DEFAULTS.get(family, {}).get(key))
