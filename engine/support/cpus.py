"""How many CPUs this process may use: the width of the dataset doctor's process pool and the trainer's decode threads.

A module of its own so the trainer's process can ask without importing engine.dataset (the doctor), which a run that
scores nothing never needs."""

from __future__ import annotations

import os


def default_workers() -> int:
    """CPUs this process may use (respects taskset/cgroup affinity where the OS reports it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)
