"""How many steps a run trains: its profile's length, or, resumed, the total its checkpoint recorded.

A length in epochs (or the default, 100 steps per instance image) makes its steps of the images: counted again at a
resume, with images added or taken away since, it made another run than the one begun, with the learning-rate schedule
of neither, and fewer images could end it before its checkpoint (refused only once the model had loaded). A resume with
the run's own length goes on to the total it began with; told another length, that length is counted again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from engine.data.batches import default_total_steps
from engine.events import Event, Warning
from engine.profile import Profile


@dataclass(frozen=True)
class KeptTotal:
    """What a checkpoint (at ``step``) recorded of the run's length: its total steps and the instance images they were
    counted of."""

    step: int
    total_steps: int
    instance_images: int


def run_total(profile: Profile, instances: int, steps_per_epoch: int, kept: KeptTotal | None,
              emit: Callable[[Event], None]) -> int:
    """The run's total steps: ``kept``'s where a resume goes on with the length the run began with, else counted from
    ``profile`` and the ``instances`` (instance images) and ``steps_per_epoch`` there are now."""
    counted = default_total_steps(profile, instances, steps_per_epoch)
    if kept is None:
        return counted
    if kept.instance_images != instances:
        epochs = profile.training.num_train_epochs
        length = f"{epochs} epochs" if epochs else "100 steps per instance image"
        emit(Warning(
            message=f"the run's instance images changed since it began ({kept.instance_images} → {instances}): it goes on "
                    f"to the {kept.total_steps} steps its {length} made of them, not the {counted} they make of the "
                    "images there now",
            advice=f"to train {length} of the images there now, stop it and resume with `--set "
                   f"training.max_train_steps={counted}`" if counted > kept.step else
                   f"{length} of the images there now would have ended it before its checkpoint's step {kept.step}"))
    return kept.total_steps
