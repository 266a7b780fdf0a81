"""Turning the ways a run can go wrong into advice instead of tracebacks."""

from __future__ import annotations

from typing import Any

from engine.errors import DbtuiError

NAN_ADVICE = (
    "use bf16 where the GPU supports it (precision.mixed_precision = \"bf16\"), keep the VAE in fp32, "
    "or lower optimizer.learning_rate"
)


class NonFiniteLossError(DbtuiError):
    """The loss became NaN or infinite: the weights would be garbage from here on."""

    advice = NAN_ADVICE


class OutOfMemoryAdviceError(DbtuiError):
    """The GPU ran out of memory; ``advice`` lists what to change."""

    def __init__(self, message: str, advice: str):
        super().__init__(message)
        self.advice = advice


def images_look_broken(images: list[Any]) -> bool:
    """True when every image is black (what NaN latents decode to)."""
    import numpy as np

    return bool(images) and all(np.asarray(image).max() <= 2 for image in images)
