"""`dbtui fit --estimate-only --price-per-hour X`: a renter on a laptop asked what the run costs and was told nothing
of the price at all; the cost needs the measured s/step, which only the steps give."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.memory.estimate import GIB, MemoryEstimate
from tests.training_helpers import tiny_profile


@pytest.mark.parametrize("mode", ["--estimate-only", "--json"])
def test_a_price_with_the_estimate_alone_says_where_the_cost_comes_from(tmp_path: Path, monkeypatch, capsys,
                                                                        mode: str) -> None:
    import engine.memory
    from dbtui.cli import main
    from engine.profile import save_profile

    estimate = MemoryEstimate(weights=int(1 * GIB), gradients=0, optimizer_state=0, activations=0, caches=0,
                              autocast_weight_copies=0, peak_phase="backward", model="m", batch=1, height=8, width=8,
                              seconds=0.0)
    monkeypatch.setattr(engine.memory, "estimate_peak", lambda profile, **how: estimate)
    path = save_profile(tiny_profile(tmp_path), tmp_path / "p.toml")
    assert main(["fit", str(path), mode, "--price-per-hour", "2.5", "--set", "training.max_train_steps=1200"]) == 0
    captured = capsys.readouterr()
    assert "note: --price-per-hour gives no cost here" in captured.err
    assert "run the same dbtui fit without --estimate-only or --json on the GPU you rent" in captured.err
    if mode == "--json":
        assert json.loads(captured.out)["run_card_gb"] > 0  # the JSON stays alone on the standard output
    # Without a price, no such note.
    assert main(["fit", str(path), mode]) == 0
    assert "price" not in capsys.readouterr().err
