"""A precision.mixed_precision value as people read it, with no torch: the wizard names what a run's settings give
before any model loads, and the trainer's dtypes (engine/training/precision.py) follow the same names."""

from __future__ import annotations

_NAMES = {"no": "fp32", "fp16": "fp16", "bf16": "bf16"}  # a mixed_precision value as the maths it gives


def maths_name(precision: str) -> str:
    """A mixed_precision value as the maths it gives, for people: "no" is fp32. A value this version does not know (a
    run of another version's event) is shown as written."""
    return _NAMES.get(precision, precision)


def frozen_weights_name(precision: str) -> str:
    """The dtype frozen weights are kept in under ``precision``: its own maths, so half precision saves their memory
    where training is mixed, and fp32 ("no") keeps them whole."""
    return maths_name(precision)
