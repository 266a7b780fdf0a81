"""Deferring a library that others import at start-up but a run seldom uses.

diffusers (its quantizers) and peft (its helpers) import bitsandbytes whenever it is installed.
Importing it runs ``torch.compile`` on four of its kernels, which imports torch's inductor: about
1 to 2 s and 45 MB at the start of every run on 2 CPU cores, though only 8-bit optimizers
and ``model.quantize`` use it. ``defer`` registers it so that its code runs at the first use of one
of its names instead.

diffusers' schedulers ``import scipy.stats`` (about 0.7 s of CPU) for their Beta-distributed sigmas
(``use_beta_sigmas``), which no profile asks for; it is deferred the same way (``SELDOM_USED``).

Hand-written because importlib's ``LazyLoader`` loads on any attribute access, and something scans
``sys.modules`` at every start: ``inspect.getmodule`` reads each module's ``__file__`` when torch
registers an operator. The module here has its import attributes (``__file__``, ``__path__``,
``__spec__``…) as plain attributes, so such a scan leaves it alone.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import types
from typing import Any

# What every dbtui process that may load diffusers or peft defers (``defer_seldom_used``).
SELDOM_USED = ("bitsandbytes", "scipy.stats")
# The library's own dunder names; other dunders (``__wrapped__``…) are what code that inspects
# modules in general asks of every module, and need no loading.
_LOADING_DUNDERS = frozenset({"__version__", "__all__"})


class _Deferred(types.ModuleType):
    """A module whose code has not run yet; the first of its own names asked of it runs it."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__") and name not in _LOADING_DUNDERS:
            raise AttributeError(name)
        load(self)
        return getattr(self, name)


def load(module: types.ModuleType) -> types.ModuleType:
    """Run a deferred module's code now, as its import would have (no-op for any other module)."""
    if type(module) is _Deferred:
        # A plain module from here on: the library's own imports of itself find it as an import
        # under way would leave it, and nothing loads it twice.
        module.__class__ = types.ModuleType
        try:
            module.__spec__.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(module.__name__, None)  # as a failed import leaves nothing behind
            raise
    return module


def _spec(name: str) -> importlib.machinery.ModuleSpec | None:
    """``name``'s spec, found without running its package's code: deferring ``scipy.stats`` at a command's start must
    not import scipy (and numpy), which a command that loads no model never uses."""
    package, _, _ = name.rpartition(".")
    if not package or package in sys.modules:
        return importlib.util.find_spec(name)
    parent = importlib.util.find_spec(package)
    if parent is None or parent.submodule_search_locations is None:
        return None
    return importlib.machinery.PathFinder.find_spec(name, parent.submodule_search_locations)


def defer(name: str) -> None:
    """Let ``import name`` give a module whose code runs at its first use. Nothing happens if it is
    imported already or not installed. A submodule (``scipy.stats``) is reached as ``package.sub`` through its
    package's own lazy loading of submodules (scipy's ``__getattr__``): the import system sets no attribute for it."""
    if name in sys.modules:
        return
    spec = _spec(name)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)  # the import attributes, set as importlib sets them
    module.__class__ = _Deferred
    sys.modules[name] = module


def defer_seldom_used() -> None:
    """Defer each library of ``SELDOM_USED``: before diffusers or peft is imported, as their imports load them."""
    for name in SELDOM_USED:
        defer(name)
