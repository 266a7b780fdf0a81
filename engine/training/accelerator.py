"""The accelerate Accelerator a run trains under: precision, trackers, DDP settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.errors import DbtuiError


class TrackerUnavailableError(DbtuiError):
    """The chosen experiment tracker is not installed."""


def make_accelerator(profile: Any, precision: str, run_dir: Path) -> Any:
    """An Accelerator for ``profile`` at the (already checked) mixed ``precision``."""
    import importlib.util

    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    from engine.training.distributed import on_cpu, process_state

    log_with = None if profile.logging.logger == "none" else profile.logging.logger
    if log_with:
        module = "tensorboard" if log_with == "tensorboard" else "wandb"
        if importlib.util.find_spec(module) is None:
            raise TrackerUnavailableError(
                f"logging.logger = \"{log_with}\" needs {module}: pip install 'dbtui[{log_with}]', or set logger = \"none\""
            )
    # accelerate keeps one state per process, fixed by its first Accelerator; a later run in the
    # same process (a second fit test, say) may ask for another precision. The process group
    # (PartialState) stays. transformers' Trainer resets it the same way.
    process_state()  # the process group, joined the way engine.training.distributed says
    AcceleratorState._reset_state()
    handlers = []
    if profile.training.train_text_encoder:
        from accelerate.utils import DistributedDataParallelKwargs

        # A text encoder read below its last layer (clip_skip, and always SDXL's first) leaves that
        # layer out of the loss: DDP must expect it. The model's family is not known yet here.
        handlers.append(DistributedDataParallelKwargs(find_unused_parameters=True))
    return Accelerator(cpu=on_cpu(), mixed_precision=precision, log_with=log_with, project_dir=str(Path(run_dir) / "logs"),
                       kwargs_handlers=handlers)
