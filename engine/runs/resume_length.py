"""How long a resumed run trains: not sooner than the run's own total unless the command line says so, and not to a
step before its checkpoint's. Both are refused by the launcher, before the trainer starts."""

from __future__ import annotations

import shlex
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.profile import Profile
from engine.profile.changes import said_changes
from engine.profile.set_text import set_option
from engine.runs.checkpoints import CheckpointError, read_manifest, recorded_profile
from engine.runs.folder import RunFolderError

if TYPE_CHECKING:  # the launcher checks lengths in the UI's process, which must not load torch
    from engine.training.run_total import KeptTotal


class ResumePastTheEndError(RunFolderError):
    """A resume whose profile ends the run before the step its checkpoint reached."""


class ResumeEndsSoonerError(RunFolderError):
    """A resume whose profile ends the run sooner than the run's own profile, without being told so: the profile file
    read again without the ``--set training.max_train_steps`` (or num_train_epochs) the run was started with."""


# The --set keys that say how long the run trains: given, a shorter run is the user's choice.
LENGTH_KEYS = frozenset({"training", "training.max_train_steps", "training.num_train_epochs"})


def _told(profile: Profile, given_keys: set[str]) -> bool:
    """Whether the command line says how long ``profile`` trains. Epochs given where max_train_steps is set (the
    file's, which counts first) say nothing of it: the run ended at the file's steps for good, unasked."""
    said = LENGTH_KEYS & given_keys
    return bool(said) and (said != {"training.num_train_epochs"} or not profile.training.max_train_steps)


def run_length(profile: Profile) -> tuple[str, int] | None:
    """The setting that says how many steps ``profile`` trains, and its value: max_train_steps, else
    num_train_epochs; None for neither (100 steps per instance image)."""
    training = profile.training
    if training.max_train_steps:
        return "max_train_steps", training.max_train_steps
    if training.num_train_epochs:
        return "num_train_epochs", training.num_train_epochs
    return None


def check_length(stored: Profile, stored_path: Path, profile: Profile, changed: list[tuple[str, Any, Any]], *,
                 run: Path, machine_rank: int, given_keys: Collection[str] | None, from_step: int | None,
                 shown: str) -> None:
    """Refuse a resume whose ``profile`` may end the run sooner than ``stored`` (this machine's stored profile, at
    ``stored_path``) does, unless ``given_keys`` (the command line's ``--set`` keys; None: no command line, as in the
    app) set its length. Steps are compared with steps and epochs with epochs; the steps of epochs, or of the
    default, depend on the images, which are not counted here, so a length set otherwise than the run's may be
    shorter: it is refused too, as that cannot be told.
    ``from_step``: the checkpoint's step, which "end it at N" must not be before; ``shown``: the profile as given
    (machine N's own `dbtui resume` is refused, so it is told the `dbtui run` to give)."""
    was, now = run_length(stored), run_length(profile)
    same_kind = was is not None and now is not None and was[0] == now[0]
    if was == now or (same_kind and now[1] > was[1]) or given_keys is None or _told(profile, set(given_keys)):
        return
    before_checkpoint = now is not None and now[0] == "max_train_steps" and from_step is not None and now[1] < from_step
    if before_checkpoint:  # not "to end it at N, say so": that would be refused (check_steps_left)
        ends = f"ends it at step {now[1]}, before its checkpoint's step {from_step}"
        end = f"to end the run sooner, say so with a `--set training.max_train_steps` of {from_step} or more"
    elif same_kind:
        at = f"at step {now[1]}" if now[0] == "max_train_steps" else f"after epoch {now[1]}"
        ends = f"ends it {at}: resumed so, it would be finished for good there"
        end = f"to end it {at}, say so with `--set training.{now[0]}={now[1]}`"
    else:
        ends = (f"trains {_said(now)} instead, which may end it sooner (how many steps a number of epochs makes depends "
                "on the images)")
        end = (f"to train it so, say so with `--set training.{now[0]}={now[1]}`" if now else
               "to train it otherwise, say how long with `--set training.max_train_steps=N`")
    if was and (was[0] == "max_train_steps" or not profile.training.max_train_steps):
        # ``shown`` leaves out a --set name (a new run's refusals offer another): without it, the command named the
        # profile's own run, not this one.
        named = f" {set_option('name', profile.name)}" if "name" in set(given_keys) else ""
        keep = (f"add `--set training.{was[0]}={was[1]}`, as in `dbtui run {shown}{named} --resume --set "
                f"training.{was[0]}={was[1]}`")
    else:  # steps set here count before the run's epochs (or its default), and --set cannot take a setting away
        here = " and ".join(f"training.{key}" for key in ("max_train_steps", "num_train_epochs")
                            if getattr(profile.training, key) and (was is None or key != was[0]))
        keep = f"take {here} out of this profile" + (f" and add `--set training.{was[0]}={was[1]}`" if was else "")
    keep += f" (the --set values it was started with are kept in {stored_path})"
    if machine_rank == 0:  # machine N's `dbtui resume` is refused: it would train machine 0's part
        keep += f", or resume it with `dbtui resume {shlex.quote(str(run))}`, which trains that profile"
    raise ResumeEndsSoonerError(f"{run} was started to train {_said(was, stored_path.name)}, and this profile {ends}. "
                                f"To keep the run's own total, {keep}; {end} (this profile differs from the run's in "
                                f"{said_changes(changed)})")


def _said(length: tuple[str, int] | None, kept_in: str | None = None) -> str:
    where = f" in its {kept_in}" if kept_in else ""
    if length is None:
        return f"100 steps per instance image (neither training.max_train_steps nor num_train_epochs set{where})"
    key, value = length
    return f"{value} {'steps' if key == 'max_train_steps' else 'epochs'} (training.{key}{where})"


def check_steps_left(run: Path, profile: Profile, step: int, checkpoint: Path) -> None:
    """Refuse a resume whose training.max_train_steps, or num_train_epochs, ends before the checkpoint's step: the run
    would be marked finished at once, with its outputs exported from the checkpoint, and could never be resumed again.
    Epochs are counted in steps by the checkpoint's record of an epoch's, where the images are as many as it counted."""
    steps = profile.training.max_train_steps
    if steps and steps < step:
        raise ResumePastTheEndError(
            f"the run is at step {step} and training.max_train_steps is {steps}: nothing is left to train. To train on, "
            f"set max_train_steps above {step} ({step} ends the run at this step, with its outputs); to keep the model as it is at step {step}, export it: "
            f"`dbtui export {shlex.quote(str(run))} --step {step}`")
    epochs = profile.training.num_train_epochs
    per_epoch = _steps_per_epoch(profile, checkpoint) if epochs and not steps else None
    if epochs and per_epoch and epochs * per_epoch < step and kept_total(checkpoint, profile) is None:
        raise ResumePastTheEndError(
            f"the run is at step {step} and training.num_train_epochs is {epochs}, {epochs * per_epoch} steps of its "
            f"images ({per_epoch} an epoch): nothing is left to train. To train on, set num_train_epochs to "
            f"{step // per_epoch + 1} or more (or max_train_steps above {step}); to keep the model as it is at step "
            f"{step}, export it: `dbtui export {shlex.quote(str(run))} --step {step}`")


def _steps_per_epoch(profile: Profile, checkpoint: Path) -> int | None:
    """The steps of an epoch as ``checkpoint`` recorded them, where ``profile`` trains as many instance images on as
    many processes (the batch's settings are the run's own: resume_point.check_same_model), else as the images there
    now make them (counted before the model loads, which found them too few only after); None where it cannot say."""
    from engine.builtin import resolve_dir
    from engine.data.images import list_images
    from engine.errors import DbtuiError
    from engine.runs.epoch_steps import steps_per_epoch_now

    try:
        manifest = read_manifest(checkpoint)
        images = sum(len(list_images(resolve_dir(concept.instance_dir))) for concept in profile.concepts)
    except (DbtuiError, OSError):
        return None  # the trainer says what is wrong with them
    per_epoch = manifest.get("steps_per_epoch")
    same = manifest.get("instance_images") == images and manifest.get("num_processes") == profile.launch.num_processes
    if same and isinstance(per_epoch, int) and per_epoch > 0:
        return per_epoch
    return steps_per_epoch_now(profile, bool(manifest.get("epoch_leftovers", False)))

def kept_total(checkpoint: Path | None, profile: Profile) -> KeptTotal | None:
    """What a resume from ``checkpoint`` with ``profile`` goes on to: the total steps the checkpoint recorded, where the
    run's length is in epochs (or the default) and ``profile`` keeps the one it began with, so that images added or
    taken away since do not make another run of it (engine/training/run_total.py). None otherwise: the profile's length
    is counted, as for checkpoints made before manifests recorded the images counted."""
    from engine.training.run_total import KeptTotal

    try:
        manifest = read_manifest(checkpoint) if checkpoint is not None else {}
    except CheckpointError:
        return None  # the load says what is wrong with it
    step, total, images = (manifest.get(key) for key in ("step", "total_steps", "instance_images"))
    before = recorded_profile(manifest)
    length = run_length(profile)
    if (before is None or not all(isinstance(value, int) for value in (step, total, images))
            or (length is not None and length[0] == "max_train_steps") or run_length(before) != length):
        return None
    return KeptTotal(step=step, total_steps=total, instance_images=images)
