"""Per-step numbers for events and trackers: smoothed loss, speed, ETA, memory; run metadata."""

from __future__ import annotations

import math
import time
from typing import Any

import torch

from engine.events import StepEnded


class StepMeter:
    """Smoothed loss, speed and ETA for step events. ``smoothed``: a resume's, from its checkpoint, which the loss goes
    on smoothing from (None: the first step's loss starts it)."""

    def __init__(self, total: int, start_step: int, smoothed: float | None = None):
        self.total = total
        self.start_step = start_step
        self.start = time.perf_counter()
        self.smoothed = smoothed
        self.last = self.start
        self.rate: float | None = None

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def step_event(self, step: int, epoch: int, loss: float, lr: float, device: torch.device, *,
                   skipped: bool = False) -> StepEnded:
        import psutil

        now = time.perf_counter()
        instant = 1.0 / max(now - self.last, 1e-9)
        self.last = now
        self.rate = instant if self.rate is None else 0.8 * self.rate + 0.2 * instant
        if math.isfinite(loss):
            self.smoothed = loss if self.smoothed is None else 0.9 * self.smoothed + 0.1 * loss
        vram = reserved = None
        if device.type == "cuda":
            vram = torch.cuda.max_memory_allocated(device) / 2**20
            reserved = torch.cuda.max_memory_reserved(device) / 2**20
        return StepEnded(
            step=step, total_steps=self.total, epoch=epoch, loss=loss,
            smoothed_loss=self.smoothed if self.smoothed is not None else loss, lr=lr, it_per_s=self.rate,
            eta_s=(self.total - step) / self.rate if self.rate else None,
            vram_allocated_peak_mb=vram, vram_reserved_peak_mb=reserved,
            rss_mb=psutil.Process().memory_info().rss / 2**20, optimizer_skipped=skipped,
        )


def versions() -> dict[str, str]:
    from importlib import metadata

    versions = {}
    for name in ("dbtui", "torch", "diffusers", "transformers", "accelerate", "peft"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def flat_config(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flat_config(value, f"{name}/"))
        elif isinstance(value, (int, float, str, bool)):
            flat[name] = value
        else:
            flat[name] = str(value)
    return flat
