"""What the meter counts of how a run is launched: the sharding that splits a full fine-tune among the processes
(engine/memory/sharding.py), and the precision the machine really trains at (fp16 on a GPU without bf16)."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.memory import estimate_peak
from engine.memory.inputs import as_trained_in
from tests.training_helpers import tiny_profile


def _launched(tmp_path: Path, sharding: str):
    return tiny_profile(tmp_path, launch={"num_processes": 2, "sharding": sharding})


@pytest.fixture(scope="module")
def launched(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("launched")
    return {sharding: estimate_peak(_launched(tmp, sharding)) for sharding in ("none", "fsdp", "deepspeed")}


def _trained_bytes() -> int:
    from diffusers import UNet2DConditionModel

    from engine.builtin import resolve_model

    unet = UNet2DConditionModel.from_pretrained(Path(resolve_model("builtin:tiny-sd1")), subfolder="unet")
    return sum(p.numel() * 4 for p in unet.parameters())  # trained in fp32


def test_fsdp_splits_weights_gradients_and_state_and_keeps_no_ddp_copy(launched) -> None:
    ddp, fsdp = launched["none"], launched["fsdp"]
    trained = _trained_bytes()
    assert fsdp.optimizer_state == ddp.optimizer_state // 2
    assert fsdp.weights == ddp.weights - trained + trained // 2
    assert fsdp.gradients < ddp.gradients / 2  # DDP's are its own plus its bucket copy; FSDP's are a half of one set
    assert any(note.startswith("FSDP across 2 processes") and "gathered blocks" in note for note in fsdp.notes)
    assert fsdp.peak_allocated < ddp.peak_allocated


def test_deepspeed_zero2_keeps_whole_weights_and_splits_gradients_and_state(launched) -> None:
    ddp, deepspeed = launched["none"], launched["deepspeed"]
    assert deepspeed.weights == ddp.weights + _trained_bytes() // 2  # without mixed precision: ZeRO's fp32 master besides
    assert deepspeed.optimizer_state == ddp.optimizer_state // 2
    assert any(note.startswith("DeepSpeed ZeRO-2 across 2 processes") and "reduce bucket" in note for note in deepspeed.notes)
    assert not any("across 2 processes" in note for note in ddp.notes)


def test_the_precision_this_gpu_trains_at_is_what_is_measured(tmp_path: Path) -> None:
    """A bf16 profile with bf16 weights and the fused step trains, on a GPU without bf16, in fp16 with fp32 weights
    and a plain step: the meter measured the bf16 setup."""
    profile = tiny_profile(tmp_path, precision={"mixed_precision": "bf16", "bf16_weights": True},
                           optimizer={"fused_backward": True})
    as_asked = estimate_peak(profile)
    here = estimate_peak(profile, precision="fp16")
    plain = estimate_peak(as_trained_in(profile, "fp16"))
    assert (here.weights, here.gradients, here.optimizer_state) == (plain.weights, plain.gradients, plain.optimizer_state)
    assert here.weights > as_asked.weights and here.peak_allocated > as_asked.peak_allocated  # fp32 weights, no fused step
    assert any("in fp16 rather than the profile's bf16" in note for note in here.notes)


def test_dbtui_fit_estimates_at_the_precision_of_the_gpu_it_runs_on(tmp_path: Path, monkeypatch, capsys) -> None:
    import torch

    import engine.memory
    from dbtui.cli import main
    from engine.profile import save_profile

    from engine.memory.estimate import MemoryEstimate

    estimate = MemoryEstimate(weights=1, gradients=0, optimizer_state=0, activations=0, caches=0, autocast_weight_copies=0,
                              peak_phase="backward", model="m", batch=1, height=8, width=8, seconds=0.0)
    asked: list = []
    monkeypatch.setattr(engine.memory, "estimate_peak", lambda profile, **how: asked.append(how) or estimate)
    path = save_profile(tiny_profile(tmp_path, precision={"mixed_precision": "bf16"}), tmp_path / "p.toml")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["fit", str(path), "--estimate-only"]) == 0
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: False)
    assert main(["fit", str(path), "--estimate-only"]) == 0
    assert [how["precision"] for how in asked] == [None, "fp16"]  # without a GPU: as a GPU with bf16 trains it


def _sharded(tmp_path: Path, sharding: str, precision: str, accumulation: int = 1):
    """(the parts one GPU holds, the note) for a 1000-weight denoiser trained whole on 4 processes."""
    import torch

    from engine.memory.sharding import StepParts, shard

    profile = tiny_profile(tmp_path, launch={"num_processes": 4, "sharding": sharding},
                           precision={"mixed_precision": precision},
                           training={"gradient_accumulation_steps": accumulation})
    denoiser = torch.nn.Linear(40, 25, bias=False)
    parts = StepParts(weights=4000, state=8000, gradients=4000, gradients_at_peak=4000,
                      accumulated=4000 if accumulation > 1 else 0, held=0, copies=0, temporaries=0, bucket_copy=4000)
    return shard(parts, profile, denoiser, trained=4000)


@pytest.mark.parametrize(("precision", "itemsize"), [("bf16", 2), ("fp16", 2), ("no", 4)])
def test_fsdp_with_gradient_accumulation_keeps_the_summed_gradients_whole(tmp_path: Path, precision: str, itemsize: int) -> None:
    """Micro-batches run under no_sync, where FSDP2 keeps each weight's whole gradient (in its reduce dtype) on every
    GPU: the meter counted a quarter of them on 4 processes."""
    parts, note = _sharded(tmp_path, "fsdp", precision, accumulation=2)
    assert parts.accumulated == 1000 * itemsize
    assert "whole gradient" in note and "between micro-batches" in note
    alone, note = _sharded(tmp_path, "fsdp", precision)
    assert alone.accumulated == 0 and "micro-batches" not in note


def test_deepspeed_without_mixed_precision_counts_the_fp32_master_share_beside_the_fp32_weights(tmp_path: Path) -> None:
    """ZeRO-2 clones its 1/N of the weights into an fp32 master copy even when they are fp32 already."""
    plain, note = _sharded(tmp_path, "deepspeed", "no")
    assert plain.weights == 4000 + 4000 // 4 and "1/4 of their fp32 master copy" in note
    mixed, _ = _sharded(tmp_path, "deepspeed", "bf16")
    assert mixed.weights == 4000  # its bf16 copy and a quarter of the fp32 master: at most the fp32 weights counted
