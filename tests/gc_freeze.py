"""The suite's ``gc.freeze`` at import waves (tests/conftest.py): torch, transformers and diffusers leave millions of
objects that live as long as the worker, and every full collection walked them all (about 1 s each on 2 loaded
cores), and a Pilot test's app (tens of thousands of objects, cycles when it ends) set one off every other app.
Frozen, later collections walk only what came after."""

from __future__ import annotations

import gc
import sys

NEW_MODULES = 200  # an import wave (torch, diffusers, textual's screens) worth moving out of the collector's walks
_FROZEN_AT = {"modules": 0}


def freeze_at_an_import_wave() -> bool:
    """Once a test starts with ``NEW_MODULES`` modules newly imported since the last freeze, collect and freeze what is
    alive (True). Only then: cycles among frozen objects are never freed, and the collection before the freeze is itself
    a walk of every object. The engine's ``free_memory`` (the end of every in-process run) unfreezes all; freezing
    again at the next test's start, as nothing frozen once did, cost that walk in each test after an in-process run
    (0.3 s of CPU each unloaded, +12% on tests/test_training.py), more than it saved."""
    if len(sys.modules) < _FROZEN_AT["modules"] + NEW_MODULES:
        return False
    gc.collect()
    gc.freeze()
    _FROZEN_AT["modules"] = len(sys.modules)
    return True
