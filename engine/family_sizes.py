"""dataset.resolution's size step told as the model's family has it, in the profile's first message.

The schema knows only the rule every family shares (a multiple of 8) and refuses 70 before any family is asked;
a Flux model then refused the 72 the user wrote next (a multiple of 16). Here, outside the light engine.profile,
the schema's refusal names the stricter step and the sizes that satisfy both.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engine.errors import DbtuiError
from engine.profile import Problem, Profile, ProfileError
from engine.profile import load_profile as load_plain_profile
from engine.profile.io import profile_source_data
from engine.support.multiples import nearest_text

SCHEMA_STEP = 8  # engine.profile.schema's rule for every family
KEY = "dataset.resolution"


def family_step(source: str, family_id: str | None = None) -> tuple[int, str] | None:
    """(the pixel step ``source``'s family refuses sizes off, its label) where that step is stricter than the schema's;
    None where any multiple of 8 trains. ``family_id``: the family already read from the model's files."""
    from math import lcm

    from engine.model_info import likely_family, size_multiple  # read only once a resolution is refused
    from engine.models.registry import family_named

    try:
        family = family_named(family_id or likely_family(source))
    except (DbtuiError, KeyError):
        return None  # a model that cannot be told here is the load's to report
    if not family.refuses_off_step_sizes:
        return None
    step = lcm(SCHEMA_STEP, size_multiple(source))  # a tiny Flux's own step is 4: 8 rules there
    return (step, family.label) if step != SCHEMA_STEP else None


def family_size_problems(problems: list[Problem], data: Mapping[str, Any], family_id: str | None = None) -> list[Problem]:
    """``problems`` (a profile's ``data`` refused), with the schema's multiple-of-8 refusal of its resolution told with
    the family's stricter step where the model has one."""
    dataset, model = data.get("dataset"), data.get("model")
    value = dataset.get("resolution") if isinstance(dataset, Mapping) else None
    source = model.get("pretrained") if isinstance(model, Mapping) else None
    if not isinstance(value, int) or isinstance(value, bool) or value % SCHEMA_STEP == 0 or not isinstance(source, str):
        return problems
    off_8 = [p for p in problems if p.key == KEY and p.message.startswith(f"must be a multiple of {SCHEMA_STEP},")]
    stricter = family_step(source, family_id) if off_8 else None
    if stricter is None:
        return problems
    step, label = stricter
    message = f"must be a multiple of {step}, not {value}, for a {label} model: {nearest_text(value, step)}"
    return [dataclasses.replace(p, message=message) if p in off_8 else p for p in problems]


def load_profile(path: str | Path, overrides: list[str] = ()) -> Profile:
    """``engine.profile.load_profile``, with a resolution off its model family's size step told by that step."""
    try:
        return load_plain_profile(path, overrides)
    except ProfileError as error:
        if not any(problem.key == KEY for problem in error.problems):
            raise  # read again only where a resolution was refused
        told = family_size_problems(error.problems, profile_source_data(path, overrides))
        if told == error.problems:
            raise
        raise ProfileError(told) from None
