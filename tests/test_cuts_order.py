"""The order of the cuts `dbtui fit` offers: a measured ("about") figure that closes the gap comes before bounds ("up
to": all of what a setting could shrink, the meter has no share for it), however large those bounds read."""

from __future__ import annotations

from pathlib import Path

from engine.memory.cuts import cuts_text, fit_cuts
from engine.memory.estimate import GIB, MemoryEstimate
from tests.training_helpers import tiny_profile


def test_a_measured_cut_that_closes_the_steps_gap_comes_before_the_bounds(tmp_path: Path) -> None:
    """sd15-person.toml in fp32 without checkpointing on an 8 GB card (the meter's parts below) listed "up to 10.0 GB",
    "up to 4.9 GB", then the fused step's "about 3.3 GB", which alone brings the steps' 10.7 GB under 8, then
    checkpointing's "up to 1.3 GB"."""
    profile = tiny_profile(tmp_path, precision={"mixed_precision": "no", "gradient_checkpointing": False},
                           optimizer={"name": "adamw8bit"}, sampling={"num_images": 2}, evaluation={"enabled": False})
    estimate = MemoryEstimate(weights=int(3.2 * GIB), gradients=int(3.04 * GIB), optimizer_state=int(1.63 * GIB),
                              activations=int(1.22 * GIB), caches=0, autocast_weight_copies=0, peak_phase="backward",
                              model="m", batch=2, height=512, width=512, seconds=0.0, sampling=int(6.64 * GIB))
    cuts = fit_cuts(profile, estimate, 8 * GIB) or []
    closing = [cut for cut in cuts if cut.known and cut.saved >= estimate.card_need - 8 * GIB]
    assert closing and cuts[0] == closing[0] and cuts[0].saver.tip.startswith("fuse the optimizer step"), cuts
    # The rule: those that close the gap alone, then those whose measured figure closes the gap they are said at,
    # then the rest by what they save.
    ranks = [(not cut.enough, not cut.closes, -cut.saved) for cut in cuts]
    assert ranks == sorted(ranks) and any(not cut.known and cut.saved > cuts[0].saved for cut in cuts[1:])
    # The previews still miss the card by a sliver: the fused step is said to close the steps' gap, not the whole.
    said = cuts_text(cuts, 8)
    assert said.startswith("fuse the optimizer step") and "about 3.3 GB less (enough for the steps)" in said
    assert said.endswith("no one of these alone is known to bring it under 8 GB: take several")


def test_a_lone_cut_that_may_not_close_the_gap_is_not_told_to_take_several(tmp_path: Path) -> None:
    """sdxl-person.toml on a T4 (fp16, no fused step) was offered one setting, a LoRA, "up to 22.7 GB less; no one of
    these alone is known to bring it under 15 GB: take several": there was nothing else to take, and the LoRA fits."""
    profile = tiny_profile(tmp_path, precision={"mixed_precision": "fp16", "gradient_checkpointing": True},
                           optimizer={"name": "adafactor"}, dataset={"cache_latents": True},
                           sampling={"num_images": 1}, evaluation={"enabled": False})
    estimate = MemoryEstimate(weights=int(9.56 * GIB), gradients=int(9.5 * GIB), optimizer_state=int(0.91 * GIB),
                              activations=int(0.3 * GIB), caches=0, autocast_weight_copies=0, peak_phase="backward",
                              model="m", batch=2, height=1024, width=1024, seconds=0.0)
    cuts = fit_cuts(profile, estimate, 15 * GIB, bf16=False) or []
    assert [cut.saver.tip.split(",")[0] for cut in cuts] == ['train a LoRA (training.method = "lora")']
    assert not cuts[0].known and not cuts[0].enough
    said = cuts_text(cuts, 15)
    assert "take several" not in said and "no one of these" not in said
    assert said.endswith("whether that alone brings it under 15 GB is not known: set it and estimate again "
                         "(dbtui fit PROFILE --estimate-only --set …)")


def test_a_lone_measured_cut_that_falls_short_is_not_called_unknown(tmp_path: Path) -> None:
    """A LoRA at 1024 px with every other saver on, 3.6 GB over the card, was offered "lower dataset.resolution to
    512, about 3.3 GB less; whether that alone brings it under 3.86 GB is not known": the meter's own figure says it
    does not."""
    profile = tiny_profile(tmp_path, training={"method": "lora", "lora": {"rank": 4}, "max_train_steps": 6},
                           precision={"mixed_precision": "fp16", "gradient_checkpointing": True},
                           optimizer={"name": "adamw8bit"}, dataset={"cache_latents": True, "resolution": 1024},
                           sampling={"num_images": 1}, evaluation={"enabled": False})
    estimate = MemoryEstimate(weights=int(2 * GIB), gradients=int(0.05 * GIB), optimizer_state=int(0.05 * GIB),
                              activations=int(4 * GIB), caches=0, autocast_weight_copies=0, peak_phase="backward",
                              model="m", batch=1, height=1024, width=1024, seconds=0.0)
    card = estimate.card_need - int(3.6 * GIB)
    cuts = fit_cuts(profile, estimate, card, bf16=False) or []
    assert [cut.saver.tip for cut in cuts] == ["lower dataset.resolution to 512"]
    assert cuts[0].known and not cuts[0].enough and cuts[0].saved < estimate.card_need - card
    said = cuts_text(cuts, card / GIB)
    assert "not known" not in said and "take several" not in said
    assert said.endswith(f"by the estimate that alone leaves it over {card / GIB:g} GB: it needs a larger card")
