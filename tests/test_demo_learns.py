"""The demo visibly learns (issue 13): ``builtin:tiny-sd1`` is pretrained on drawn shapes, so its
previews are pictures, and the demo's DreamBooth run moves them toward the "zwx disc".

Also: rebuilding the shipped weights is deterministic (checked on a very short schedule).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from engine.builtin import demo_profile_text
from engine.profile import Profile, loads_profile
from engine.runs.in_process import train
from engine.models.sd import StableDiffusion
from engine.training.sampling import save_samples
from engine.builtin.tiny_model import build_pipeline
from engine.builtin.tiny_pretrain import Schedule, pretrain
from engine.builtin.tiny_weights import ARCHITECTURE, PARTS

# The demo profile plus the settings proposed for it in issue 13 (harmless once it has them).
DEMO_OVERRIDES = ["evaluation.enabled=false", "training.max_train_steps=60", "optimizer.learning_rate=5e-4", "saving.every_n_steps=30", "sampling.steps=12"]
PREVIEWS = 4  # more previews than the demo's own, for a steadier mean
DISC_COLOURS = ((220, 30, 30), (250, 210, 20))  # the zwx disc's rings (engine/demo_data.py)
MARGIN = 0.07


def test_pretraining_is_deterministic_on_a_short_schedule() -> None:
    schedule = Schedule(vae_steps=2, vae_batch=2, unet_steps=2, unet_batch=2)
    first, second = pretrain(schedule), pretrain(schedule)
    untrained = build_pipeline("tiny", "sd1", seed=schedule.seed, **ARCHITECTURE)
    for part in PARTS:
        a, b, start = (getattr(p, part).state_dict() for p in (first, second, untrained))
        assert all(torch.equal(a[k], b[k]) for k in a), part
        assert not all(torch.equal(a[k], start[k]) for k in a), f"{part} did not train"
    assert first.vae.config.scaling_factor == second.vae.config.scaling_factor
    assert not torch.are_deterministic_algorithms_enabled()  # the global switch is put back


def _previews(model_dir: Path, profile: Profile, folder: Path) -> list[Any]:
    """The demo's previews (same prompt, sampler, steps, guidance and seeds) from ``model_dir``."""
    from diffusers import DPMSolverMultistepScheduler, StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(model_dir, safety_checker=None, requires_safety_checker=False)
    pipe.scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    sampling = profile.sampling
    sd = StableDiffusion()
    return save_samples(
        pipe, folder, prompts=[profile.concepts[0].instance_prompt], negative_prompt=sampling.negative_prompt,
        num_images=PREVIEWS, steps=sampling.steps, guidance=sampling.guidance_scale, seed=sampling.seed,
        resolution=profile.dataset.resolution, prompt_kwargs=sd.prompt_kwargs,
        encode=lambda captions: sd.encode_text([pipe.tokenizer], [pipe.text_encoder], captions, profile.training.clip_skip, pipe.device),
    )[2]


def _disc_colour_share(images: list[Any]) -> float:
    """Mean share of pixels near the zwx disc's red or yellow (RGB distance under 70)."""
    share = 0.0
    for image in images:
        pixels = torch.frombuffer(bytearray(image.convert("RGB").tobytes()), dtype=torch.uint8).float().reshape(-1, 3)
        near = torch.zeros(len(pixels), dtype=torch.bool)
        for colour in DISC_COLOURS:
            near |= (pixels - torch.tensor(colour, dtype=torch.float32)).norm(dim=1) < 70
        share += near.float().mean().item()
    return share / len(images)


def test_the_demo_moves_its_previews_toward_the_instance_images(tmp_path: Path, tiny_sd1: Path, demo_data: Path) -> None:
    """The demo's own run, in-process: its previews take on the colours of the zwx disc.

    Measured 2026-12-02 with these settings (mean of 4 previews): 0.085 of the pixels near the
    disc's red or yellow before training, 0.225 after. The run is seeded, so one machine repeats
    these numbers exactly; MARGIN (half the measured gain) leaves room for other CPUs' rounding.
    """
    profile = loads_profile(demo_profile_text(), [f"saving.output_dir={str(tmp_path / 'runs')!r}", *DEMO_OVERRIDES])
    before = _disc_colour_share(_previews(tiny_sd1, profile, tmp_path / "before"))
    result = train(profile)
    assert result.status == "finished"
    after = _disc_colour_share(_previews(Path(result.outputs["diffusers"]), profile, tmp_path / "after"))
    assert after > before + MARGIN, (before, after)
