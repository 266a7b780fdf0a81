"""Every machine of a run trains the same profile: checked once the processes have met.

Machine N trains its own profile-machine-N.toml. One that differs from machine 0's either hangs the run
(another max_train_steps: one process waits in a step's gradient exchange that the others never join, for the
3-hour meeting timeout) or trains it silently out of step (another learning rate: each process steps with its own).
"""

from __future__ import annotations

from typing import Any

from engine.errors import DbtuiError

# What may differ from machine to machine, as README "Running on two machines" has it: the machine's own number,
# how its launcher is started (an accelerate config file and launcher options are each machine's), where the run
# folder lies (each machine's own disk, or a shared one) and where this machine keeps its copies of the models (the
# class images are matched by machine 0's model, engine/training/class_generation.py). Machine 0's address and port
# are left out too: the processes met there, which proves them the same whatever each profile wrote (a hostname or
# its IP; 29500 or empty, its default).
PER_MACHINE = frozenset({"launch.machine_rank", "launch.config_file", "launch.extra_args", "launch.main_process_ip",
                         "launch.main_process_port", "saving.output_dir", "model.pretrained", "model.revision",
                         "model.vae", "model.tokenizer", "evaluation.clip_model", "evaluation.dino_model"})

SHOWN = 6  # differing keys named per machine; the rest are counted


class ProfilesDifferError(DbtuiError):
    """A machine of a multi-machine run trains another profile than machine 0's."""


def shared_settings(profile: Any) -> dict[str, Any]:
    """The profile's settings as dotted keys (``concepts[0].instance_dir``), less those of ``PER_MACHINE``."""
    flat: dict[str, Any] = {}

    def walk(value: Any, key: str) -> None:
        if isinstance(value, dict):
            for name, inner in value.items():
                walk(inner, f"{key}.{name}" if key else name)
        elif isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
            for index, inner in enumerate(value):
                walk(inner, f"{key}[{index}]")
        elif key not in PER_MACHINE:
            flat[key] = value

    walk(profile.model_dump(mode="json"), "")
    return flat


def differences(mine: dict[str, Any], main: dict[str, Any]) -> list[str]:
    """``key (this machine's value vs machine 0's)`` for every shared key whose values differ, in key order."""
    missing = object()
    return [f"{key} ({_shown(mine.get(key, missing), missing)} vs {_shown(main.get(key, missing), missing)})"
            for key in sorted(mine.keys() | main.keys()) if mine.get(key, missing) != main.get(key, missing)]


def _shown(value: Any, missing: object) -> str:
    return "not set" if value is missing or value is None else repr(value)


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
    for machine, settings in gathered[1:]:
        if machine not in told:
            found = differences(settings, main)
            if found:
                told[machine] = found
    if not told:
        return
    said = "; ".join(f"machine {machine}'s profile differs from machine 0's in {len(found)} setting(s), machine "
                     f"{machine}'s value vs machine 0's: " + ", ".join(found[:SHOWN])
                     + (f" and {len(found) - SHOWN} more" if len(found) > SHOWN else "")
                     for machine, found in sorted(told.items()))
    raise ProfilesDifferError(f"{said}. Every machine must train the same profile (only launch.machine_rank differs): "
                              "copy machine 0's profile to the others, and start every machine again with the same "
                              "--set options")
