"""Whether a run's base round (``evaluation/step-000000/``) measures on this attempt's scale.

Its ``settings.json`` says what its images were made and scored with (``round_settings``), written once its event is
said; until then the folder holds ``UNFINISHED``: an attempt that ended first (a resume killed before it started
training, scorers that failed after its images were made) left images no event or record stands for, scored again. A
base round that records none and holds no such mark was made by an older dbtui: the profiles of the run's attempts
(their run_started events) then say what it was made with, computed as ``round_settings`` computes them now. Where every
one gives this attempt's settings and the round's images are all there, it is this run's: it is recorded, and the
rounds scored with it (whose events record no settings) keep counting for the best step. Otherwise the base model is
scored again (``PreviewRounds.score_base_again``), and the earlier images are moved aside, never deleted: a user
made them, and they were the report's "before" pictures. Where scoring the new images fails, they are removed and the
earlier round put back (``put_back``): it is as it was, for the next resume.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
from pathlib import Path
from typing import Any

from engine.builtin import is_builtin
from engine.errors import DbtuiError
from engine.evaluation.prompts import evaluation_prompts
from engine.events import RunStarted, event_from_dict, marked_lines
from engine.profile import Profile
from engine.profile.fields import PATHS_READ
from engine.profile.migrations import migrate
from engine.support.json_file import read_json_object

BASE_SETTINGS = "settings.json"  # in the base round's folder: the settings its images were made and scored with
UNFINISHED = "unfinished"  # in the base round's folder from before its images are made until BASE_SETTINGS is written


NEGATIVE_PROMPT = "sampling.negative_prompt"  # a round setting only families that read a negative prompt depend on


def round_settings(profile: Profile) -> dict[str, Any]:
    """What a round's scores are measured on: rounds under other settings score other images (the prompts, their
    number and seeds, how they are generated) with other scorers, so they are not compared with each other."""
    evaluation, sampling = profile.evaluation, profile.sampling
    return {"prompts": [p.prompt for p in evaluation_prompts(profile)], "clip_model": evaluation.clip_model,
            "dino_model": evaluation.dino_model, "images_per_prompt": evaluation.images_per_prompt, "seed": evaluation.seed,
            "sampling.steps": sampling.steps, "sampling.guidance_scale": sampling.guidance_scale,
            NEGATIVE_PROMPT: sampling.negative_prompt}


def image_name(prompt_index: int, image_index: int) -> str:
    """The file name ``save_samples`` gives an image (so a resumed run finds the base images)."""
    return f"prompt{prompt_index:02d}_{image_index:02d}.png"


def base_round_difference(folder: Path, scale: dict[str, Any], events_file: Path) -> str | None:
    """None when the base round in ``folder`` (which exists) was made with the settings ``scale``; else what differs,
    as the start of a warning. An older dbtui's round found to be of these settings is recorded as it is checked."""
    if cut_short(folder):
        return f"the base round in {folder} was cut short before its scores were said"
    recorded = read_json_object(folder / BASE_SETTINGS)
    if recorded:
        changed = _changed(scale, [recorded])
        return f"the [evaluation] settings differ from those the base round in {folder} was scored with ({changed})" if changed \
            else None
    earlier = attempt_scales(events_file)
    if earlier is None:
        return (f"the base round in {folder} records no [evaluation] settings (an older dbtui made it, or its round was cut "
                "short) and the run's events do not say the profile it was made with")
    changed = _changed(scale, earlier)
    if changed:
        return f"the [evaluation] settings differ from those of the profile the base round in {folder} was made with ({changed})"
    names = {image_name(i, k) for i in range(len(scale["prompts"])) for k in range(scale["images_per_prompt"])}
    if names != {path.name for path in folder.glob("prompt*.png")}:
        return (f"the base round in {folder} records no [evaluation] settings, and its images are not those of this run's "
                f"{len(names)} (its round was cut short, or made from another prompt list)")
    (folder / BASE_SETTINGS).write_text(json.dumps(scale, indent=1), encoding="utf-8")
    return None


def spelt_as_recorded(scale: dict[str, Any], folder: Path, events_file: Path, *, reads_negative: bool = True) -> dict[str, Any]:
    """``scale`` with a scorer folder spelt as the base round in ``folder`` recorded it, where that names the same
    folder: a run started before its scorer folders were kept absolute recorded './models/clip', its profile now holds
    the folder absolute, read from the folder dbtui runs in (as the run keeps it, profile_anchor.anchored_profile). Read as
    another scorer, its base round was scored again and its earlier rounds no longer compared with the new ones.
    ``reads_negative`` false (a family that takes no negative prompt: Flux): the negative prompt as recorded too, since
    it changes none of the images; a resume that emptied it, as the run's warning advises, rescored the base for nothing."""
    recorded = read_json_object(folder / BASE_SETTINGS)
    records = [recorded] if recorded else attempt_scales(events_file) or []
    spelt = dict(scale)
    for key in ("clip_model", "dino_model"):
        old, now = _recorded(records, key), scale.get(key)
        if (isinstance(old, str) and isinstance(now, str) and old and not is_builtin(old) and not os.path.isabs(old)
                and os.path.isabs(now) and os.path.abspath(old) == os.path.normpath(now)):
            spelt[key] = old
    old = _recorded(records, NEGATIVE_PROMPT)
    if not reads_negative and isinstance(old, str) and isinstance(scale.get(NEGATIVE_PROMPT), str):
        spelt[NEGATIVE_PROMPT] = old
    return spelt


def _recorded(records: list[dict[str, Any]], key: str) -> Any:
    """The value every one of ``records`` holds for ``key``; None where they differ or there are none."""
    written = [record.get(key) for record in records]
    return written[0] if written and all(value == written[0] for value in written) else None


def cut_short(folder: Path) -> bool:
    """Whether the base round in ``folder`` was made by an attempt that ended before its scores were said and recorded:
    without the mark it would be taken for an older dbtui's, of the settings the run's starts name, whatever it was
    made with (a resume under other settings that was stopped before it started training)."""
    return (folder / UNFINISHED).exists()


def attempt_scales(events_file: Path) -> list[dict[str, Any]] | None:
    """The settings of each attempt of the run that scored (its run_started event's profile, with [evaluation] on); None
    when they cannot be known: no such attempt, a damaged line that may be a start, a profile this dbtui no longer
    reads. Another event that holds the words "run_started" (a warning quoting them) is no start."""
    try:
        starts = list(marked_lines(Path(events_file), (b'"run_started"',)))  # a start's line a start: a few
    except OSError:
        return None
    scales = []
    for line in starts:
        try:
            data = json.loads(line)
            if not isinstance(data, dict) or data.get("event") != "run_started":
                continue
            event = event_from_dict(data)
        except (ValueError, TypeError):
            return None
        profile = _profile(event.profile) if isinstance(event, RunStarted) else None
        if profile is None:
            return None
        if profile.evaluation.enabled:
            scales.append(round_settings(profile))
    return scales or None


def _profile(data: Any) -> Profile | None:
    """The profile an event or a manifest stored (``model_dump``), read as this dbtui reads it; None when it cannot be."""
    if not isinstance(data, dict):
        return None
    try:
        return Profile.model_validate(migrate(copy.deepcopy(data)), context=PATHS_READ)
    except (DbtuiError, ValueError, TypeError):  # pydantic's ValidationError is a ValueError
        return None


def _changed(scale: dict[str, Any], records: list[dict[str, Any]]) -> str:
    """The settings of ``scale`` any of ``records`` holds otherwise, named with commas; empty when none."""
    return ", ".join(name for name, value in scale.items() if any(record.get(name) != value for record in records))


def set_aside(folder: Path) -> Path | None:
    """Move an earlier base round out of the way, to ``step-000000-earlier-N`` beside it (the first N free): the
    report and the round read ``step-000000`` as the base round of this scale, and its images stay the user's. One that
    holds no image (its attempt ended before the first, leaving its ``UNFINISHED`` mark alone) is removed: None."""
    if {path.name for path in folder.iterdir()} <= {UNFINISHED, BASE_SETTINGS}:
        shutil.rmtree(folder)  # an "earlier" folder said to keep images it has none of
        return None
    number = 1
    while (aside := folder.with_name(f"{folder.name}-earlier-{number}")).exists():
        number += 1
    folder.rename(aside)
    return aside


def put_back(folder: Path, aside: Path | None) -> bool:
    """Undo a base round made again and never scored (its scorers failed past ``check_scorers``): its images in
    ``folder`` are removed and the round ``set_aside`` moved to ``aside`` (None: none was) comes back, so that each
    resume does not set aside one more copy of it. Whether the earlier round is back in ``folder``."""
    shutil.rmtree(folder, ignore_errors=True)  # images no event stands for: a resume would only make them again
    if aside is None or folder.exists():
        return False
    aside.rename(folder)
    return True
