"""The dashboard's VRAM "now" is the trainer's GPU: NVML numbers GPUs by PCI bus and ignores CUDA_VISIBLE_DEVICES."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from dbtui import gpu_live


class FakeNvml:
    """Three GPUs in NVML's (PCI) order, GPU i using i+1 GiB; and one MIG slice of GPU 2 using 7 GiB."""

    def __init__(self, names: tuple[str, ...] = ("NVIDIA H100",) * 3):
        self.names = names
        self.uuids = [f"GPU-{i}a2b3c4d-0000-1111-2222-33334444555{i}" for i in range(3)]

    def nvmlInit(self) -> None:
        pass

    def nvmlDeviceGetCount(self) -> int:
        return len(self.names)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        if not 0 <= index < len(self.names):
            raise RuntimeError("Invalid Argument")
        return index

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> int:
        if uuid == "MIG-9f8e7d6c-0000-1111-2222-333344445555":
            return 6
        raise RuntimeError("Not Found")

    def nvmlDeviceGetName(self, handle: int) -> str:
        return self.names[handle]

    def nvmlDeviceGetUUID(self, handle: int) -> bytes:
        return self.uuids[handle].encode()

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> SimpleNamespace:
        return SimpleNamespace(used=(handle + 1) * 2**30)


@pytest.fixture
def nvml(monkeypatch: pytest.MonkeyPatch) -> FakeNvml:
    fake = FakeNvml()
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.setattr(gpu_live, "_state", {})
    return fake


@pytest.mark.parametrize(("env", "gib"), [
    ({}, 1),
    ({"CUDA_VISIBLE_DEVICES": "1"}, 2),
    ({"CUDA_VISIBLE_DEVICES": " 2, 0"}, 3),
    ({"CUDA_VISIBLE_DEVICES": "GPU-1a2b3c4d-0000-1111-2222-333344445551,0"}, 2),
    ({"CUDA_VISIBLE_DEVICES": "GPU-2a2b"}, 3),  # a unique prefix, as CUDA takes it
    ({"CUDA_VISIBLE_DEVICES": "2a2b3c4d"}, 3),  # without GPU-
    ({"CUDA_VISIBLE_DEVICES": "MIG-9f8e7d6c-0000-1111-2222-333344445555"}, 7),
    ({"CUDA_VISIBLE_DEVICES": "GPU-"}, None),  # names every GPU: CUDA refuses it
    ({"CUDA_VISIBLE_DEVICES": ""}, None),  # no GPU: the trainer is on the CPU
    ({"CUDA_VISIBLE_DEVICES": "-1"}, None),
    ({"CUDA_VISIBLE_DEVICES": "5"}, None),
])
def test_the_trainers_device_zero_read_from_its_physical_gpu(nvml: FakeNvml, env: dict[str, str], gib: int | None) -> None:
    assert gpu_live.used_vram_mb(env) == (None if gib is None else gib * 1024)


def test_an_index_in_cudas_fastest_first_order_is_not_told_among_unlike_cards(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml(("NVIDIA RTX A4000", "NVIDIA H100", "NVIDIA H100")))
    monkeypatch.setattr(gpu_live, "_state", {})
    assert gpu_live.used_vram_mb({"CUDA_VISIBLE_DEVICES": "1"}) is None  # CUDA's 1 might be NVML's 0 or 2
    assert gpu_live.used_vram_mb({"CUDA_VISIBLE_DEVICES": "1", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}) == 2 * 1024


def test_the_trainers_cuda_variables_are_its_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run started in another shell with CUDA_VISIBLE_DEVICES=1, attached from one without it."""
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setenv("CUDA_DEVICE_ORDER", "FASTEST_FIRST")
    run = tmp_path / "run"
    run.mkdir()
    trainer = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; sys.stdout.write('up\\n'); sys.stdout.flush(); time.sleep(60)",
         "engine.runs.worker", str(run)],
        env={"CUDA_VISIBLE_DEVICES": "1", "PATH": "/usr/bin:/bin"}, stdout=subprocess.PIPE)
    try:
        assert trainer.stdout is not None and trainer.stdout.readline() == b"up\n"
        (run / "trainer.lock").write_text(str(trainer.pid))
        assert gpu_live.trainer_cuda_env(run) == {"CUDA_VISIBLE_DEVICES": "1"}
    finally:
        trainer.kill()
        trainer.wait()
    # Its trainer gone (or never started): the wizard's own, which it starts its trainers with
    assert gpu_live.trainer_cuda_env(run) == {"CUDA_DEVICE_ORDER": "FASTEST_FIRST"}
    assert gpu_live.trainer_cuda_env(None) == {"CUDA_DEVICE_ORDER": "FASTEST_FIRST"}
