"""Every machine of a run trains the same profile: checked once the processes have met.

Machine N trains its own profile-machine-N.toml. One that differs from machine 0's either hangs the run
(another max_train_steps: one process waits in a step's gradient exchange that the others never join, for the
3-hour meeting timeout) or trains it silently out of step (another learning rate: each process steps with its own).
"""

from __future__ import annotations

import json
import re
from typing import Any

from engine.errors import DbtuiError
from engine.profile.changes import flat_settings
from engine.profile.concept_pairs import concept_pairs
from engine.training.same_folders import folder_setting, is_folder, is_folder_key, said_folders, same_files

# What may differ from machine to machine, as README "Running on two machines" has it: the machine's own number,
# how its launcher is started (an accelerate config file and launcher options are each machine's) and where the run
# folder lies (each machine's own disk, or a shared one). Machine 0's address and port are left out too: the
# processes met there, which proves them the same whatever each profile wrote (a hostname or its IP; 29500 or empty,
# its default). The scorers run on machine 0's main process only.
PER_MACHINE = frozenset({"launch.machine_rank", "launch.config_file", "launch.extra_args", "launch.main_process_ip",
                         "launch.main_process_port", "saving.output_dir", "evaluation.clip_model",
                         "evaluation.dino_model"})
# Which model each machine loads: a local path may differ (each machine's own copy), but not whether one is set at
# all (a VAE swapped in on one machine only), nor a hub id or built-in name, nor the hub revision of the base model.
SOURCES = ("model.pretrained", "model.vae", "model.tokenizer")
REVISION = "model.revision"

SHOWN = 6  # differing keys named per machine; the rest are counted
_CONCEPT_FIELD = re.compile(r"concepts\[(\d+)\]\.(\w+)")
_WHOLE_CONCEPT = re.compile(r"concepts\[\d+\]")  # a concept at another place, or on one machine only


class ProfilesDifferError(DbtuiError):
    """A machine of a multi-machine run trains another profile than machine 0's."""


def shared_settings(profile: Any) -> dict[str, Any]:
    """The profile's settings as dotted keys (``concepts[0].instance_dir``), less those of ``PER_MACHINE``; each of
    ``SOURCES`` as ``[kind, value]`` (kind ``path`` or ``id``, told on this machine, where its paths are) or None;
    each concept's folder with the files it holds here (``same_folders.folder_setting``)."""
    extension = profile.dataset.caption_extension

    def shared(key: str, value: Any) -> Any:
        if key in SOURCES:
            return _source(value)
        return folder_setting(value, extension) if is_folder_key(key) else value

    return {key: shared(key, value) for key, value in flat_settings(profile).items() if key not in PER_MACHINE}


def differences(mine: dict[str, Any], main: dict[str, Any], machine: int = 1) -> list[str]:
    """``key (this machine's value vs machine 0's)`` for every shared key whose values differ, in key order; ``machine``
    is this machine's number. The concepts are paired by what their instance folders hold (``concept_pairs``): one at
    another place than machine 0's is one ``concepts[N] (…, machine 0's concepts[M])``, and so is one that only one
    machine has."""
    return [line for _, line, _ in _differences(mine, main, machine)]


def _differences(mine: dict[str, Any], main: dict[str, Any], machine: int) -> list[tuple[str, str, set[str]]]:
    """``differences``' lines, each as (key it is sorted by, line, the keys whose advice it needs)."""
    ours, theirs = _concepts(mine), _concepts(main)
    pairs, only_main, only_mine = concept_pairs(theirs, ours, lambda concept: _folder_identity(concept["instance_dir"]),
                                                _likeness)
    found = [(key, f"{key} ({_said(key, mine.get(key, MISSING), main.get(key, MISSING), machine)})", {key})
             for key in mine.keys() | main.keys()
             if ((index := _concept_index(key)) is None or pairs.get(index) == index) and not _same(key, mine, main)]
    for index, was in pairs.items():
        if index != was:
            fields = sorted(field for field in ours[index].keys() | theirs[was].keys()
                            if not same_files(ours[index].get(field), theirs[was].get(field)))
            said = [f"{field} ({_said(field, ours[index].get(field), theirs[was].get(field), machine)})" for field in fields]
            its = f", and its {', '.join(said)}" if said else ""
            found.append((f"concepts[{index}]", f"concepts[{index}] ({_instance(ours[index])}, machine 0's "
                                                f"concepts[{was}]{its})",
                          {f"concepts[{index}]", *(f"concepts[{index}].{field}" for field in fields)}))
    found += [(f"concepts[{index}]", f"concepts[{index}] ({_instance(ours[index])} vs not set)", {f"concepts[{index}]"})
              for index in only_mine]
    found += [(f"concepts[{was}]", f"concepts[{was}] of machine 0 (not set vs {_instance(theirs[was])})",
               {f"concepts[{was}]"}) for was in only_main]
    return sorted(found, key=lambda difference: difference[:2])


def _likeness(theirs: dict[str, Any], ours: dict[str, Any]) -> tuple[int, int, int] | None:
    """How alike two concepts whose instance folders hold other files are: the files (name and size) and the image names
    their folders share, then their other fields alike; None where the folders share no name. A concept listed in
    another order whose folder is also a stale copy (an image added or changed on one machine) was otherwise said as
    one concept on machine 1 only and another on machine 0 only, or, two such, each paired by place with the other."""
    mine, main = _files(ours), _files(theirs)
    names = {name for name, _ in mine} & {name for name, _ in main}
    if not names:
        return None
    fields = sum(same_files(ours.get(field), theirs.get(field)) for field in ours.keys() | theirs.keys()
                 if field != "instance_dir")
    return len(mine & main), len(names), fields


def _files(concept: dict[str, Any]) -> set[tuple[str, int]]:
    folder = concept["instance_dir"]
    return {(name, size) for name, size in folder[2]} if is_folder(folder) and isinstance(folder[2], list) else set()


def _concept_index(key: str) -> int | None:
    field = _CONCEPT_FIELD.fullmatch(key)
    return int(field[1]) if field else None


def _concepts(settings: dict[str, Any]) -> list[dict[str, Any]]:
    """Each concept's settings by field name, in the profile's order."""
    concepts: dict[int, dict[str, Any]] = {}
    for key, value in settings.items():
        field = _CONCEPT_FIELD.fullmatch(key)
        if field:
            concepts.setdefault(int(field[1]), {})[field[2]] = value
    return [concepts[index] for index in sorted(concepts)]


def _folder_identity(value: Any) -> Any:
    """What the machines pair a concept by: its instance folder's files, wherever each machine keeps them; a folder with
    none here (not copied yet, or not listed), or a ``builtin:`` name, by its path as written."""
    if is_folder(value):
        return json.dumps(value[2]) if isinstance(value[2], list) and value[2] else value[1]
    return value


def _instance(concept: dict[str, Any]) -> str:
    return f"instance_dir {_shown('instance_dir', concept['instance_dir'])}"


def _said(key: str, ours: Any, theirs: Any, machine: int) -> str:
    if is_folder(ours) and is_folder(theirs):
        return said_folders(ours, theirs, machine)
    return f"{_shown(key, ours)} vs {_shown(key, theirs)}"


MISSING = object()


def _source(value: str | None) -> list[str] | None:
    from engine.profile.model_source import model_kind

    if value is None:
        return None
    return ["id" if model_kind(value) in ("hub", "builtin") else "path", value]


def _same(key: str, mine: dict[str, Any], main: dict[str, Any]) -> bool:
    ours, theirs = mine.get(key, MISSING), main.get(key, MISSING)
    if key in SOURCES and isinstance(ours, list) and isinstance(theirs, list) and "path" in (ours[0], theirs[0]):
        return True  # both set, one a local copy: it may be a copy of the other's model
    if key == REVISION:
        if not all(_is_id(settings.get("model.pretrained")) for settings in (mine, main)):
            return True  # a revision is only read from the hub
        return (ours or "main") == (theirs or "main")  # no revision is the hub's default branch
    return same_files(ours, theirs) if is_folder_key(key) else ours == theirs


def _is_id(source: Any) -> bool:
    return isinstance(source, list) and source[0] == "id"


def _shown(key: str, value: Any) -> str:
    if key in SOURCES and isinstance(value, list) or is_folder(value):
        value = value[1]  # shown as written
    return "not set" if value is MISSING or value is None else repr(value)


def check_same_profile(profile: Any, num_processes: int) -> None:
    """Refuse, on every process alike, a run whose machines train different profiles. Collective: every process
    of the run calls it at the same point; each sends its machine's settings to all (one exchange)."""
    if num_processes == 1:
        return
    from accelerate.utils import gather_object

    # Each process's own [rank, settings]: gather_object joins the lists of every process, in process order.
    gathered = gather_object([[profile.launch.machine_rank, shared_settings(profile)]])
    main = gathered[0][1]
    told: dict[int, list[str]] = {}
    keys: set[str] = set()  # what the advice is chosen by
    for machine, settings in gathered[1:]:
        if machine not in told:
            found = _differences(settings, main, machine)
            if found:
                told[machine] = [line for _, line, _ in found]
                keys.update(*(needs for _, _, needs in found))
    if not told:
        return
    said = "; ".join(f"machine {machine}'s profile differs from machine 0's in {len(found)} setting(s), machine "
                     f"{machine}'s value vs machine 0's: " + ", ".join(found[:SHOWN])
                     + (f" and {len(found) - SHOWN} more" if len(found) > SHOWN else "")
                     for machine, found in sorted(told.items()))
    advice = []
    if any(_WHOLE_CONCEPT.fullmatch(key) for key in keys):
        # The order is training's: epoch_batches deals each concept's batches in turn, by its place, and each process
        # takes every N-th batch of its own list; listed otherwise, the machines take batches of two other sequences.
        advice.append("list the concepts as machine 0's profile does, in its order (the order decides which images "
                      "each machine trains at each step)")
    if any(not is_folder_key(key) and not _WHOLE_CONCEPT.fullmatch(key) for key in keys):
        advice.append("copy machine 0's profile to the others, and start every machine again with the same --set "
                      "options")
    if any(is_folder_key(key) for key in keys):
        advice.append("a concept's folder may lie at another path on each machine but must hold the same files (names "
                      "and sizes): copy machine 0's folder to the others")
    raise ProfilesDifferError(f"{said}. Every machine must train the same profile (only launch.machine_rank differs): "
                              + "; ".join(advice))
