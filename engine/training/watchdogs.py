"""Turning the ways a run can go wrong into advice instead of tracebacks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.errors import DbtuiError

NAN_ADVICE = (
    "use bf16 where the GPU supports it (precision.mixed_precision = \"bf16\"), keep the VAE in fp32, "
    "or lower optimizer.learning_rate"
)


class NonFiniteLossError(DbtuiError):
    """The loss became NaN or infinite: the weights would be garbage from here on."""

    # A resume is exact, and refuses another rate or precision: it meets the same NaN at the same step.
    advice = (NAN_ADVICE + ", in a new run (`--set name=NEW_NAME`): a resume keeps the run's settings and meets the "
              "same NaN again")


class OutOfMemoryAdviceError(DbtuiError):
    """The GPU ran out of memory; ``advice`` lists what to change."""

    def __init__(self, message: str, advice: str):
        super().__init__(message)
        self.advice = advice


class PeerProcessLostError(DbtuiError):
    """Another process of a several-process run ended (killed, out of host memory, its machine gone)."""

    def __init__(self, message: str, advice: str):
        super().__init__(message)
        self.advice = advice


# What gloo and NCCL say in this process when the other end of a collective is gone.
_PEER_GONE = ("Connection reset by peer", "Connection closed by peer", "Broken pipe", "NCCL communicator was aborted")


def peer_process_lost(error: Exception, num_processes: int, run_dir: Any,
                      resume: Callable[[], str]) -> PeerProcessLostError | None:
    """The error to report when ``error`` is a collective failing because another process of the run is gone;
    ``resume()`` says how the run goes on (from its latest checkpoint, or from the start where it saved none). Asked
    only then: it reads the run's checkpoints, which an unforeseen error's own report must not depend on."""
    import torch.distributed as dist

    if num_processes < 2 or not isinstance(error, RuntimeError):
        return None
    text = str(error)
    if not (isinstance(error, dist.DistNetworkError) or any(said in text for said in _PEER_GONE)):
        return None
    return PeerProcessLostError(
        f"another process of this run ended without a word (killed, out of host memory, or its machine gone): "
        f"{text.splitlines()[0][:200]}",
        f"see that process's log in {run_dir}/logs; {resume()}",
    )


class SkippedSteps:
    """Says when fp16's loss scaler has skipped ``limit`` optimizer steps in a row (once a streak).

    The scaler halves its scale at each skip, so a few at a run's start are normal; 20 in a row divide
    it by a million (from 65,536 at the start, below 0.1), so gradients that still overflow have
    gone bad. The loss goes on looking normal while the weights no longer move, which no other sign shows.
    """

    def __init__(self, limit: int = 20):
        self.limit = limit
        self.in_a_row = 0

    def after(self, step: int, skipped: bool) -> Any:
        """The Warning to emit after ``step``, or None."""
        from engine.events import Warning

        self.in_a_row = self.in_a_row + 1 if skipped else 0
        if self.in_a_row != self.limit:
            return None
        return Warning(message=f"fp16's loss scaler skipped the last {self.limit} optimizer steps (to step {step}): the "
                               "gradients overflow fp16 even at a millionth of the scale, so the weights are not training",
                       advice=NAN_ADVICE)


def images_look_broken(images: list[Any]) -> bool:
    """True when every image is black (what NaN latents decode to)."""
    import numpy as np

    return bool(images) and all(np.asarray(image).max() <= 2 for image in images)
