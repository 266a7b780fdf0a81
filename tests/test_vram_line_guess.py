"""The wizard's VRAM line says when its estimate is made on an architecture guessed from the name of a model that is
not on this machine (a profile for a machine to rent, or a mistyped path)."""

from __future__ import annotations

import dataclasses

from dbtui.widgets.vram_line import card_line
from engine.memory.estimate import GIB, MemoryEstimate

ESTIMATE = MemoryEstimate(weights=6 * GIB, gradients=0, optimizer_state=0, activations=0, caches=0,
                          autocast_weight_copies=0, peak_phase="backward", model="m", batch=1, height=8, width=8,
                          seconds=0.0)


def test_a_guessed_architecture_is_said_in_the_vram_line() -> None:
    """It read "VRAM ≈ 7.3 GB on the card · fits 8 GB ✓ …", as confident as for a model that is here."""
    line = card_line(dataclasses.replace(ESTIMATE, guessed_architecture=True), "(bf16)")
    assert line.startswith("VRAM ≈ 7.3 GB on the card (bf16) (model not here: architecture guessed from its name) · fits")


def test_a_model_that_is_here_gets_no_caveat() -> None:
    assert card_line(ESTIMATE) == f"VRAM ≈ 7.3 GB on the card · {ESTIMATE.fit_line()}"
