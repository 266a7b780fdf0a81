"""What this machine can train with: GPUs, memory, libraries. Imports torch: call it lazily."""

from __future__ import annotations

import importlib.util
import platform
import shutil
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str
    total_mb: float
    free_mb: float | None
    compute_capability: str
    bf16: bool


@dataclass(frozen=True)
class Hardware:
    gpus: list[Gpu] = field(default_factory=list)
    torch: str = ""
    cuda: str | None = None
    driver: str | None = None
    bitsandbytes: bool = False
    """bitsandbytes is installed (found, not imported: importing it costs start-up time and, without
    CUDA, logs a CPU-kernel notice). The 8-bit optimizer imports it, and says so if it cannot load."""
    xformers: bool = False
    ram_total_mb: float = 0.0
    ram_available_mb: float = 0.0
    disk_free_mb: float = 0.0
    python: str = platform.python_version()

    @property
    def vram_mb(self) -> float:
        return max((g.total_mb for g in self.gpus), default=0.0)

    def to_dict(self) -> dict:
        return asdict(self)


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _installed(package: str) -> bool:
    """The distribution is installed and its module can be found, without importing it."""
    return _version(package) is not None and importlib.util.find_spec(package) is not None


def _driver() -> str | None:
    try:
        import pynvml

        pynvml.nvmlInit()
        version = pynvml.nvmlSystemGetDriverVersion()
        return version.decode() if isinstance(version, bytes) else version
    except Exception:  # noqa: BLE001 - NVML is missing on machines without an NVIDIA driver
        return None


def probe(path: str | Path = ".") -> Hardware:
    """Probe GPUs, libraries, RAM and free disk at ``path`` (or its nearest existing parent)."""
    import psutil
    import torch

    gpus = []
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            try:
                free, _ = torch.cuda.mem_get_info(index)
                free_mb = free / 2**20
            except RuntimeError:
                free_mb = None
            gpus.append(
                Gpu(index, props.name, props.total_memory / 2**20, free_mb, f"{props.major}.{props.minor}", props.major >= 8)
            )
    target = Path(path).resolve()
    while not target.exists():
        target = target.parent
    memory = psutil.virtual_memory()
    return Hardware(
        gpus=gpus,
        torch=torch.__version__,
        cuda=torch.version.cuda,
        driver=_driver(),
        bitsandbytes=_installed("bitsandbytes"),
        xformers=_version("xformers") is not None and bool(gpus),
        ram_total_mb=memory.total / 2**20,
        ram_available_mb=memory.available / 2**20,
        disk_free_mb=shutil.disk_usage(target).free / 2**20,
    )


def verdict(hw: Hardware) -> tuple[str, str]:
    """(a sentence on what this machine can do, the recommended preset name)."""
    vram = hw.vram_mb / 1024
    if not hw.gpus:
        return ("No NVIDIA GPU found: training real models here would take days. Try `dbtui demo` to see everything work.", "cpu-demo")
    name = hw.gpus[0].name
    if vram < 8:
        return (f"{name} with {vram:.0f} GB: LoRA training fits; full fine-tuning does not.", "lora")
    if vram < 16:
        return (f"{name} with {vram:.0f} GB: full fine-tune with 8-bit Adam, gradient checkpointing, fp16 and cached latents.", "full-8bit")
    if vram < 24:
        return (f"{name} with {vram:.0f} GB: full fine-tune comfortably; text-encoder training is tight.", "full")
    return (f"{name} with {vram:.0f} GB: full fine-tune with text-encoder training.", "full-text-encoder")
