"""What a new draft takes from its model's family once the Model step reads it: the settings whose schema default
that family cannot train well with (Flux in fp16 overflows, and engine/models/flux.py warns of it)."""

from __future__ import annotations

from typing import Any

from dbtui.session import Session

FAMILY_DEFAULTS: dict[str, dict[str, Any]] = {"flux": {"precision.mixed_precision": "bf16"}}


def adopt_family_defaults(session: Session) -> None:
    """Set each of the checked model's family defaults the draft does not name, after taking back those the family
    checked before put and nobody changed since (Flux's bf16 on an SD model checked after it). A value the user set
    stays, as does a preset's and an opened profile's: a saved profile names every setting, so only a new draft lacks
    them. A hub id not downloaded has its name's family, as the problems panel warns by (black-forest-labs/FLUX.1-dev
    in fp16)."""
    for key, put in session.family_put.items():
        if session.get(key) == put and key not in session.preset_left:
            session.set(key, None)
    session.family_put = {}
    for key, value in FAMILY_DEFAULTS.get(session.advised_family or "", {}).items():
        if session.get(key) is None:
            session.set(key, value)
            session.family_put[key] = value
