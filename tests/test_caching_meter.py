"""The meter's caching moment follows the trainer's order (engine/memory/caching.py): the VAE encodes
the images before frozen text encoders load, and text encoders that train are on the device all along.
Counting every encoder beside the VAE's pass, the meter was 70 % over SDXL's caching pass on an H200."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.memory import estimate_peak
from tests.training_helpers import tiny_profile

HUGE = 10**9  # an encoding pass that outweighs any encoder of the tiny model


def test_frozen_text_encoders_are_not_on_the_device_during_the_vaes_pass_and_trained_ones_are(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import engine.memory.caching as caching
    from engine.builtin import resolve_model
    from engine.memory import meter
    from engine.models.loading import load_components

    passes = {"image": HUGE, "text": 0}  # the VAE's pass, the text encoders' pass
    monkeypatch.setattr(caching, "_peak", lambda model, encode: passes["image" if encode.__name__ == "encode_image" else "text"])
    seen = []
    measure = caching.measure_caching
    monkeypatch.setattr(meter, "measure_caching", lambda *args: seen.append(measure(*args)) or seen[-1])
    estimate_peak(tiny_profile(tmp_path))
    estimate_peak(tiny_profile(tmp_path, training={"train_text_encoder": True}))
    passes.update({"image": 0, "text": HUGE})
    estimate_peak(tiny_profile(tmp_path))
    frozen_vae_pass, trained_vae_pass, frozen_text_pass = seen

    components = load_components(Path(resolve_model("builtin:tiny-sd1")))
    text_bytes = sum(t.numel() * t.element_size() for m in components.text_encoders for t in [*m.parameters(), *m.buffers()])
    assert frozen_vae_pass.encoding == trained_vae_pass.encoding == frozen_text_pass.encoding == HUGE
    assert trained_vae_pass.weights - frozen_vae_pass.weights == text_bytes
    assert frozen_text_pass.weights == trained_vae_pass.weights  # loaded beside the VAE for the captions


def test_the_estimate_says_whether_the_text_encoders_moment_is_the_caching_passs_peak(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """flux-lora-16gb.toml: the advice said a smaller dataset.resolution shrinks the caching pass, but its peak is
    T5-XXL's moment, which no size changes (11.03 GB on the card at 256 px as at 512)."""
    import engine.memory.caching as caching

    passes = {"image": HUGE, "text": 0}
    monkeypatch.setattr(caching, "_peak", lambda model, encode: passes["image" if encode.__name__ == "encode_image" else "text"])
    assert not estimate_peak(tiny_profile(tmp_path)).caching_text
    passes.update({"image": 0, "text": HUGE})
    assert estimate_peak(tiny_profile(tmp_path)).caching_text
