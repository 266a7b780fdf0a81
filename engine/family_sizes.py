"""dataset.resolution's and dataset.buckets' size step told as the model's family has it, in the profile's first message.

The schema and its rules know only the rule every family shares (a multiple of 8) and refuse 70 before any family is
asked; a Flux model then refused the 72 the user wrote next (a multiple of 16). Here, outside the light engine.profile,
that refusal names the stricter step and the sizes that satisfy both.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engine.errors import DbtuiError
from engine.profile import Problem, Profile, ProfileError
from engine.profile import load_profile as load_plain_profile
from engine.profile.io import profile_source_data
from engine.support.multiples import nearest_size_text, nearest_text

SCHEMA_STEP = 8  # engine.profile.schema's rule for every family
KEY = "dataset.resolution"
BUCKET_KEY = re.compile(r"dataset\.buckets\.(\d+)")  # engine.profile.rules' key of one bucket
BUCKET_LEAST = 32  # engine.profile.rules' smallest side of a bucket


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
    """``problems`` (a profile's ``data`` refused), with the multiple-of-8 refusal of its resolution or of a bucket
    told with the family's stricter step where the model has one."""
    dataset, model = data.get("dataset"), data.get("model")
    source = model.get("pretrained") if isinstance(model, Mapping) else None
    if not isinstance(dataset, Mapping) or not isinstance(source, str):
        return problems
    off_8 = {problem: size for problem in problems if (size := _off_8(problem, dataset))}
    stricter = family_step(source, family_id) if off_8 else None
    if stricter is None:
        return problems
    step, label = stricter
    return [dataclasses.replace(p, message=_told(p, off_8[p], step, label)) if p in off_8 else p for p in problems]


def _off_8(problem: Problem, dataset: Mapping[str, Any]) -> tuple[int, ...] | None:
    """The resolution or bucket whose multiple-of-8 refusal ``problem`` is; None for any other problem."""
    if problem.key == KEY:
        size = (dataset.get("resolution"),)
        told = problem.message.startswith(f"must be a multiple of {SCHEMA_STEP},")
    elif match := BUCKET_KEY.fullmatch(problem.key):
        buckets = dataset.get("buckets")
        size = tuple(buckets[int(match[1])]) if isinstance(buckets, list) and int(match[1]) < len(buckets) else ()
        told = True  # the rules' one refusal of a bucket, its sides off 8 or under 32
    else:
        return None
    sides_ok = size and all(isinstance(side, int) and not isinstance(side, bool) for side in size)
    return size if told and sides_ok and any(side % SCHEMA_STEP for side in size) else None


def _told(problem: Problem, size: tuple[int, ...], step: int, label: str) -> str:
    if problem.key == KEY:
        return f"must be a multiple of {step}, not {size[0]}, for a {label} model: {nearest_text(size[0], step)}"
    return (f"bucket {'x'.join(map(str, size))} must be at least {BUCKET_LEAST} and a multiple of {step} on both "
            f"sides, for a {label} model: {nearest_size_text(size, step, BUCKET_LEAST)}")


def load_profile_with_family_step(path: str | Path, overrides: list[str] = (), **options: str) -> Profile:
    """``engine.profile.load_profile`` (``options`` its keywords), with a resolution off its model family's size step
    told by that step."""
    try:
        return load_plain_profile(path, overrides, **options)
    except ProfileError as error:
        if not any(problem.key == KEY or BUCKET_KEY.fullmatch(problem.key) for problem in error.problems):
            raise  # read again only where a resolution or a bucket was refused
        told = family_size_problems(error.problems, profile_source_data(path, overrides))
        if told == error.problems:
            raise
        raise ProfileError(told) from None
