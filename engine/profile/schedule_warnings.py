"""A learning-rate schedule that runs, but not as meant: a warm-up as long as the run never reaches the rate set.

Here, in the light profile package, so that ``dbtui validate`` says it where the profile fixes the run's length
(training.max_train_steps), and the trainer, which knows the length from the epochs too, says it in the run's log.
"""

from __future__ import annotations

from typing import Any

from engine.profile.problems import Problem

WARMUP_KEY = "optimizer.lr_warmup_steps"


def warmup_shortfall(optimizer: Any, total_steps: int) -> tuple[str, str] | None:
    """(what happens, what to do) when the warm-up is as long as the run or longer; None otherwise."""
    warmup = optimizer.lr_warmup_steps
    if optimizer.lr_scheduler == "constant" or not warmup or warmup < total_steps:
        return None
    # The first step trains at none of it, so the last trains at (steps - 1) / warm-up of it.
    rate = "its full value" if optimizer.learning_rate is None else f"the {optimizer.learning_rate:g} set"  # None: the method's
    return (f"is {warmup} and the run is {total_steps} steps, so the learning rate ends at "
            f"{(total_steps - 1) / warmup:.0%} of {rate}",
            f"set lr_warmup_steps to about a tenth of the run ({max(1, total_steps // 10)}), or more steps")


def schedule_problems(profile: Any) -> list[Problem]:
    """The warm-up's shortfall, where the profile gives the run's length in steps."""
    steps = profile.training.max_train_steps
    shortfall = warmup_shortfall(profile.optimizer, steps) if steps else None
    return [Problem(WARMUP_KEY, f"{shortfall[0]}; {shortfall[1]}")] if shortfall else []
