"""What NF4 is said to save: the layers it quantizes, not every weight. A Flux LoRA in bf16 was told NF4 takes "about
18.5 GB" off, three quarters of all its weights, the fp32 LoRA and the layers NF4 leaves whole (embeddings, norms,
the layers outside the blocks) among them, where the meter's own estimates in bf16 and in NF4 differ by 15.7."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.memory import estimate_peak
from engine.memory.cuts import fit_cuts
from engine.memory.estimate import ALLOCATOR_SLACK
from tests.training_helpers import tiny_profile


@pytest.mark.parametrize(("quantize", "precision"), [(None, "bf16"), ("int8", "bf16"), (None, "no")])
def test_the_nf4_cut_saves_what_the_meter_says_nf4_takes_off(tmp_path: Path, quantize: str | None, precision: str) -> None:
    def profile(kind: str | None):
        return tiny_profile(tmp_path, model={"pretrained": "builtin:tiny-flux", "quantize": kind},
                            training={"method": "lora"}, precision={"mixed_precision": precision})

    before, after = estimate_peak(profile(quantize)), estimate_peak(profile("nf4"))
    taken = before.weights - after.weights
    assert 0 < taken < 0.75 * before.weights
    cuts = fit_cuts(profile(quantize), before, before.card_need - 1) or []
    nf4 = [cut for cut in cuts if 'model.quantize = "nf4"' in cut.saver.tip]
    assert nf4 and nf4[0].known and nf4[0].saved == int(taken * (1 + ALLOCATOR_SLACK)), (nf4, taken)
