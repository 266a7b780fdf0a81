"""NVML's live VRAM reading for the dashboard; None where there is no NVIDIA driver."""

from __future__ import annotations

_state: dict[str, object] = {}


def used_vram_mb(index: int = 0) -> float | None:
    """Memory in use on GPU ``index`` by every process, as the driver sees it."""
    if _state.get("broken"):
        return None
    try:
        import pynvml

        if not _state.get("ready"):
            pynvml.nvmlInit()
            _state["ready"] = True
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        return pynvml.nvmlDeviceGetMemoryInfo(handle).used / 2**20
    except Exception:  # noqa: BLE001 - NVMLError_LibraryNotFound without a driver; do not retry
        _state["broken"] = True
        return None
