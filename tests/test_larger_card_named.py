"""Where a card is too small and no setting helps, the advice names the card to rent: "use a larger card" and "use a
card of more than 8 GB" left the user to guess which size the meter says holds the profile."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine.hardware.card_names import CARD_GB, NO_BF16, REPORTED_GB, SIZES_OF
from engine.hardware.machine import card_hardware, card_verdict, too_small, verdict
from engine.memory.estimate import GIB, MemoryEstimate
from tests.training_helpers import tiny_profile

SOLD = sorted({gb for name, gb in CARD_GB.items() if name not in NO_BF16 and name not in REPORTED_GB}
              | {gb for sizes in SIZES_OF.values() for gb in sizes})


@pytest.mark.parametrize("family", ["sd", "sd2", "sdxl", "flux"])
def test_a_card_too_small_for_any_preset_is_told_the_smallest_card_that_holds_one(family: str) -> None:
    sentence, preset = card_verdict(2, family)
    named = re.search(r"use a card of ([0-9.]+) GB or more\.", sentence)
    assert named and "use a larger card" not in sentence, sentence
    card = float(named.group(1))
    assert card in SOLD and not too_small(card_hardware(card), verdict(card_hardware(card), family)[1], family)
    # No smaller size a card is sold with holds the family's smallest preset.
    assert all(too_small(card_hardware(smaller), preset, family) for smaller in SOLD if smaller < card), (family, card)


def test_fit_names_the_card_that_holds_the_profile_where_none_asked_does(tmp_path: Path, monkeypatch, capsys) -> None:
    """flux-lora-16gb.toml-like: the caching pass needs 11.75 GB, and no setting helps an 8 GB card."""
    import engine.memory
    from dbtui.cli import main
    from engine.profile import save_profile

    estimate = MemoryEstimate(weights=int(7.4 * GIB), gradients=0, optimizer_state=int(0.1 * GIB), activations=0,
                              caches=0, autocast_weight_copies=0, peak_phase="backward", model="m", batch=1, height=8,
                              width=8, seconds=0.0, caching=int(10 * GIB))
    monkeypatch.setattr(engine.memory, "estimate_peak", lambda profile, **how: estimate)
    profile = tiny_profile(tmp_path, training={"method": "lora", "lora": {"rank": 16}}, optimizer={"name": "adamw8bit"},
                           dataset={"cache_latents": True}, model={"pretrained": "builtin:tiny-sd1", "quantize": "nf4"},
                           precision={"mixed_precision": "bf16", "gradient_checkpointing": True})
    path = save_profile(profile, tmp_path / "p.toml")
    assert main(["fit", str(path), "--estimate-only", "--card", "8"]) == 1
    out = capsys.readouterr().out
    assert "no setting here brings them under 8 GB: rent 12 GB or more\n" in out, out
    assert estimate.fits(12) and not estimate.fits(10)
