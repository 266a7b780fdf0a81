"""NVML's live VRAM reading for the dashboard; None where there is no NVIDIA driver or the trainer's GPU is not known.

NVML numbers GPUs by PCI bus and ignores CUDA_VISIBLE_DEVICES: the trainer's device 0 is the first GPU its
CUDA_VISIBLE_DEVICES names (an index, in CUDA_DEVICE_ORDER's order, or a GPU or MIG UUID, or a prefix of one)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from engine.runs.folder import RunFolder
from engine.runs.held_file import holder_pid
from engine.runs.trainer_process import trainer_alive

_state: dict[str, object] = {}


def trainer_cuda_env(run_dir: Path | None) -> dict[str, str]:
    """The CUDA_* variables of the run's trainer, from /proc; this process's own where they cannot be read (the wizard
    starts its trainers with its own environment)."""
    pid = holder_pid(RunFolder(run_dir).lock) if run_dir is not None else 0
    environ: dict[str, str] = dict(os.environ)
    if pid and trainer_alive(pid, run_dir):  # an ended run's pid may be another process's now
        try:
            pairs = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:  # no /proc (macOS), another user's process, or ended
            pass
        else:
            environ = dict(os.fsdecode(p).partition("=")[::2] for p in pairs if b"=" in p)
    return {k: v for k, v in environ.items() if k in ("CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER")}


def used_vram_mb(cuda_env: dict[str, str] | None = None) -> float | None:
    """Memory in use, by every process, on the GPU that is CUDA device 0 for a process with ``cuda_env``."""
    if _state.get("broken"):
        return None
    try:
        import pynvml

        if not _state.get("ready"):
            pynvml.nvmlInit()
            _state["ready"] = True
    except Exception:  # noqa: BLE001 - NVMLError_LibraryNotFound without a driver; do not retry
        _state["broken"] = True
        return None
    try:
        handle = _device_zero(pynvml, cuda_env or {})
        return None if handle is None else pynvml.nvmlDeviceGetMemoryInfo(handle).used / 2**20
    except Exception:  # noqa: BLE001 - a GPU named but not there (or gone): unknown this time
        return None


def _device_zero(nvml: Any, cuda_env: dict[str, str]) -> Any:
    visible = cuda_env.get("CUDA_VISIBLE_DEVICES")
    first = "0" if visible is None else visible.split(",")[0].strip()
    if first.isdigit():
        # CUDA's default order is fastest first, NVML's by PCI bus: the same only where every card is alike.
        if cuda_env.get("CUDA_DEVICE_ORDER") != "PCI_BUS_ID" and len({nvml.nvmlDeviceGetName(h) for h in _all(nvml)}) > 1:
            return None
        return nvml.nvmlDeviceGetHandleByIndex(int(first))
    if first.startswith("MIG-"):
        return nvml.nvmlDeviceGetHandleByUUID(first)
    if not first:  # "" hides every GPU (the trainer is on the CPU)
        return None
    wanted = first if first.startswith("GPU-") else f"GPU-{first}"
    matches = [h for h in _all(nvml) if _text(nvml.nvmlDeviceGetUUID(h)).startswith(wanted)]
    return matches[0] if len(matches) == 1 else None  # CUDA takes a UUID's prefix only where it names one GPU ("-1": none)


def _all(nvml: Any) -> list[Any]:
    return [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(nvml.nvmlDeviceGetCount())]


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
