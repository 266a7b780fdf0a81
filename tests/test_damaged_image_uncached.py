"""A picture damaged past its header stops a run before its first step, whether latents are cached or not."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from dataset_fixture import textured

from engine.data.images import DataError
from engine.runs.in_process import train
from engine.runs.sinks import read_events
from tests.training_helpers import tiny_profile


def test_a_jpeg_cut_short_stops_an_uncached_run_before_its_first_step(tmp_path: Path) -> None:
    """With dataset.cache_latents = false nothing decoded the pictures before training: the run failed at the step
    that first met the cut JPEG (step 18 of 40 here; hours into a real run), which the doctor had named from the start."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for seed in range(3):
        textured(seed, (64, 64)).save(photos / f"good_{seed}.png")
    jpeg = io.BytesIO()
    textured(9, (256, 256)).save(jpeg, "JPEG")
    (photos / "z_cut.jpg").write_bytes(jpeg.getvalue()[: len(jpeg.getvalue()) // 2])
    profile = tiny_profile(tmp_path, dataset={"resolution": 64, "cache_latents": False},
                           concepts=[{"instance_dir": str(photos), "instance_prompt": "photo of zwx disc"}],
                           training={"method": "full", "max_train_steps": 8, "seed": 7})
    with pytest.raises(DataError, match="1 image file\\(s\\) cannot be decoded .*z_cut.jpg"):
        train(profile, tmp_path / "run")
    assert not [e for e in read_events(tmp_path / "run" / "events.jsonl") if type(e).__name__ == "StepEnded"]


def test_uncached_only_one_process_per_machine_decodes_every_picture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every process of a machine decoded every picture once more, one after another (the machine's main first):
    on several GPUs the check took as long again per process, and showed nothing more."""
    import accelerate

    from engine.data import encoders

    photos = tmp_path / "photos"
    photos.mkdir()
    for seed in range(3):
        textured(seed, (64, 64)).save(photos / f"good_{seed}.png")
    profile = tiny_profile(tmp_path, dataset={"resolution": 64, "cache_latents": False},
                           concepts=[{"instance_dir": str(photos), "instance_prompt": "photo of zwx disc"}],
                           training={"method": "full", "max_train_steps": 1, "seed": 7})
    checked: list[str] = []
    real_fill = encoders.LatentSource.fill
    monkeypatch.setattr(encoders.LatentSource, "fill", lambda self, *args: checked.append("fill") or real_fill(self, *args))
    monkeypatch.setattr(accelerate.Accelerator, "is_local_main_process", property(lambda self: False))
    train(profile, tmp_path / "run")
    assert checked == []
