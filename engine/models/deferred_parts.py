"""Model parts loaded at their first use, and dropped again once a run no longer needs them.

Why: a run whose text embeddings are all cached (a re-run or a resume in the same run folder) never
needs its text encoders: SDXL's two are 3.3 GB in fp32, Flux's T5 is 9.5 GB in bf16. Loading them
only when something asks keeps that time and host memory off every such start, and ``release``
lets a first run drop them once their outputs are cached. A later use loads them again from the
model folder, as the base has them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class DeferredParts:
    """A list of model parts that ``load`` makes on the first ``get``."""

    def __init__(self, load: Callable[[], list[Any]]):
        self._load = load
        self._parts: list[Any] | None = None

    @classmethod
    def ready(cls, parts: list[Any]) -> DeferredParts:
        """Parts made already (the memory meter's fake ones, tests' own): ``release`` keeps them."""
        deferred = cls(lambda: parts)
        deferred._parts = parts
        return deferred

    @property
    def is_loaded(self) -> bool:
        return self._parts is not None

    def get(self) -> list[Any]:
        """The parts, loaded now if they are not yet."""
        if self._parts is None:
            self._parts = self._load()
        return self._parts

    def loaded(self) -> list[Any]:
        """The parts if they are loaded, else none: for code that acts on them only where they are."""
        return self._parts or []

    def release(self) -> None:
        """Drop them; the next ``get`` loads them again."""
        self._parts = None
