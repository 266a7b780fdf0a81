"""What is on the device when, before and between the steps (tiny Flux on an NF4 base, CPU):

- class images are generated from prompts encoded first, by a pipeline without text encoders, on
  the quantized transformer the run trains on;
- the caches fill before the denoiser is prepared (no LoRA on it yet);
- previews of a run with cached prompts never run a text encoder.

On a GPU that order is what keeps T5 and the transformer off the card together (engine/memory/caching.py).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.training_helpers import tiny_profile


def _profile(tmp_path: Path, demo_data: Path) -> Any:
    shutil.copytree(demo_data / "class", tmp_path / "class")  # 8 images: 2 more are generated
    return tiny_profile(
        tmp_path, model={"pretrained": "builtin:tiny-flux", "quantize": "nf4"},
        concepts=[{"instance_dir": "builtin:demo-instance", "instance_prompt": "photo of zwx disc", "class_dir": str(tmp_path / "class"),
                   "class_prompt": "photo of a disc", "num_class_images": 10}],
        prior={"enabled": True, "steps": 2}, sampling={"num_images": 1, "steps": 2},
        training={"method": "lora", "max_train_steps": 2, "lora": {"rank": 4, "alpha": 4.0}})


def _quantized_layers(model: torch.nn.Module) -> int:
    import bitsandbytes as bnb

    return sum(isinstance(m, bnb.nn.Linear4bit) for m in model.modules())


def _lora_layers(model: torch.nn.Module) -> int:
    from peft.tuners.tuners_utils import BaseTunerLayer

    return sum(isinstance(m, BaseTunerLayer) for m in model.modules())


def test_class_images_then_caches_then_the_denoiser_and_previews_without_text_encoders(
        tmp_path: Path, tiny_flux: Path, demo_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import engine.training.sampling as sampling
    from engine.training.trainer import Trainer

    seen: dict[str, Any] = {"generations": []}
    generate = sampling.generate_images

    def spying_generate(pipe: Any, family: Any = None, **kwargs: Any) -> list[Any]:
        seen["generations"].append({"quantized": _quantized_layers(pipe.transformer), "text_encoders": (pipe.text_encoder, pipe.text_encoder_2),
                                    "prompt_embeds": "prompt_embeds" in kwargs and "prompt" not in kwargs})
        return generate(pipe, family, **kwargs)

    sources = Trainer._sources

    def spying_sources(self: Trainer) -> None:
        seen["lora_while_caching"] = _lora_layers(self.components.unet)
        sources(self)

    monkeypatch.setattr(sampling, "generate_images", spying_generate)
    monkeypatch.setattr(Trainer, "_sources", spying_sources)
    trainer = Trainer(_profile(tmp_path, demo_data), tmp_path / "run")
    trainer.setup()

    [class_images] = seen["generations"]  # one batch of the 2 missing images
    assert class_images == {"quantized": 40, "text_encoders": (None, None), "prompt_embeds": True}
    assert len(list((tmp_path / "class").glob("generated-*/*.png"))) == 2
    assert seen["lora_while_caching"] == 0 and _lora_layers(trainer.components.unet) > 0
    assert _quantized_layers(trainer.components.unet) == 40  # quantized once: the class images' base is the one that trains

    trainer.sample(0)
    assert (trainer.run_dir / "samples" / "step-000000" / "grid.png").is_file()
    assert seen["generations"][-1] == {"quantized": 40, "text_encoders": (None, None), "prompt_embeds": True}
