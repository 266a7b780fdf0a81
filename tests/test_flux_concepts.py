"""A Flux LoRA over several concepts at once (tiny Flux, CPU): one DreamBooth concept with its
identifier prompt, and one native concept, captioned images with no identifier, trained at their
own aspect ratios (bucketing), so the transformer sees packed latents that are not square."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.training_helpers import tiny_profile

CAPTIONS = {"wide_red.png": ("a red band across a white field", (96, 48), (200, 30, 30)),
            "tall_blue.png": ("a blue column on a white field", (48, 96), (30, 30, 200)),
            "wide_green.png": ("a green band across a white field", (96, 48), (30, 160, 30))}


def _captioned_folder(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for name, (caption, size, colour) in CAPTIONS.items():
        image = Image.new("RGB", size, (250, 250, 250))
        image.paste(Image.new("RGB", (size[0] // 2, size[1] // 2), colour), (size[0] // 4, size[1] // 4))
        image.save(folder / name)
        (folder / name).with_suffix(".txt").write_text(caption + "\n")
    return folder


def test_a_dreambooth_and_a_native_captioned_concept_train_together_in_their_own_buckets(
        tmp_path: Path, tiny_flux: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import engine.models.flux
    from engine.runs.in_process import train
    from engine.runs.sinks import read_events

    shapes: list[tuple[int, int]] = []
    pack = engine.models.flux.pack

    def recording_pack(latents: Any) -> Any:
        shapes.append(tuple(latents.shape[-2:]))
        return pack(latents)

    monkeypatch.setattr(engine.models.flux, "pack", recording_pack)

    native = _captioned_folder(tmp_path / "style")
    profile = tiny_profile(
        tmp_path, model={"pretrained": "builtin:tiny-flux"},
        concepts=[{"instance_dir": "builtin:demo-instance", "instance_prompt": "photo of zwx disc"},
                  {"instance_dir": str(native), "instance_prompt": "", "caption_mode": "caption_file"}],
        dataset={"resolution": 64, "bucketing": True},
        training={"method": "lora", "max_train_steps": 12, "lora": {"rank": 4, "alpha": 4.0}},
        optimizer={"learning_rate": 5e-3})
    captured = {}
    result = train(profile, trainer_hook=lambda trainer: captured.setdefault("trainer", trainer))
    assert result.status == "finished"
    examples = captured["trainer"].examples
    by_concept = {concept: [e for e in examples if e.concept == concept] for concept in (0, 1)}
    assert {e.caption for e in by_concept[0]} == {"photo of zwx disc"}
    assert {e.caption for e in by_concept[1]} == {caption for caption, _, _ in CAPTIONS.values()}
    # Landscape and portrait images keep their shapes: each in a bucket of its own aspect, none square.
    buckets = {e.path.name: e.bucket for e in by_concept[1]}
    assert buckets["wide_red.png"][0] > buckets["wide_red.png"][1] and buckets["tall_blue.png"][0] < buckets["tall_blue.png"][1]
    losses = [e.loss for e in read_events(captured["trainer"].run_dir / "events.jsonl") if e.kind == "step_ended"]
    assert len(losses) == 12 and all(loss == loss and loss < 10 for loss in losses)  # finite on every bucket
    assert any(h < w for h, w in shapes) and any(h > w for h, w in shapes)  # the transformer trained on both shapes
    assert Path(result.outputs["lora_diffusers"]).exists()
