"""One torch thread for a small model trained on a CPU (the demo's tiny built-ins), unless the user chose a count.

Measured on a 2-core machine under a load of about 2, `dbtui demo` (1.5 M-weight UNet, 64 px): 197 s wall and 251 s of
CPU with torch's default of a thread per core, 65 s and 63 s with one. Tensors this small give each operation too
little to share out, and threads that wait on one another lose most where the cores are busy; with more cores the
default only adds threads. A real model's tensors are large enough to share, so its runs keep torch's default.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

SMALL_MODEL_WEIGHTS = 50_000_000  # the tiny built-ins hold 1-5 M; SD1.5's UNet holds 860 M


def one_thread_fits(device_type: str, weights: int, environ: Mapping[str, str]) -> bool:
    """Whether a run on ``device_type`` of a denoiser with ``weights`` should train on one thread: on a CPU, below
    SMALL_MODEL_WEIGHTS, where neither OMP_NUM_THREADS nor MKL_NUM_THREADS is set (the user's count stays)."""
    chosen = any(environ.get(name) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"))
    return device_type == "cpu" and weights < SMALL_MODEL_WEIGHTS and not chosen


def limit_cpu_threads(device_type: str, denoiser: Any) -> None:
    """Train on one thread where ``one_thread_fits``; torch's default otherwise."""
    import torch

    if one_thread_fits(device_type, sum(p.numel() for p in denoiser.parameters()), os.environ):
        torch.set_num_threads(1)
