"""The memory meter: a training step's peak GPU memory, computed without a GPU.

``estimate_peak`` (engine/memory/meter.py) imports torch when called; ``MemoryEstimate`` does not.
Callers that must stay free of torch (the wizard) run it in a child process:
``engine.memory.process.estimate_in_child``, which starts ``python -m engine.memory PROFILE``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.memory.estimate import CARD_SIZES_GB, CUDA_CONTEXT_BYTES, MemoryEstimate

if TYPE_CHECKING:
    from engine.memory.meter import estimate_peak

__all__ = ["CARD_SIZES_GB", "CUDA_CONTEXT_BYTES", "MemoryEstimate", "estimate_peak"]


def __getattr__(name: str) -> Any:
    if name == "estimate_peak":
        from engine.memory.meter import estimate_peak

        return estimate_peak
    raise AttributeError(name)
