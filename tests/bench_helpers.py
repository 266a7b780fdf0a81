"""Importing the scripts under bench/, which are not a package and import each other by name."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

BENCH = Path(__file__).resolve().parents[1] / "bench"


def bench_module(name: str) -> Iterator[ModuleType]:
    """Yield bench/<name>.py as a module, with bench/ on sys.path only meanwhile (for fixtures)."""
    sys.path.insert(0, str(BENCH))
    try:
        yield importlib.import_module(name)
    finally:
        sys.path.remove(str(BENCH))
