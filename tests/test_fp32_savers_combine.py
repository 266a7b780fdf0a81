"""An fp32 full fine-tune was told both "use mixed precision (precision.mixed_precision = "fp16", …)" and "fuse the
optimizer step (optimizer.fused_backward = true …)": following both, validate refuses the profile (fp16 refuses the
fused step). The savers now offer no pair the profile check refuses."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine.memory.savers import savers
from engine.profile.problems import ProfileError
from engine.profile.rules import cross_field_problems
from tests.training_helpers import tiny_profile


def _tip(found, start: str) -> str:
    return next(saver.tip for saver in found if saver.tip.startswith(start))


def _precision(tip: str) -> str:
    return re.search(r'precision\.mixed_precision = "(\w+)"', tip).group(1)


def test_an_fp32_full_fine_tune_on_a_card_with_bf16_is_told_a_precision_the_fused_step_takes(tmp_path: Path) -> None:
    profile = tiny_profile(tmp_path, precision={"mixed_precision": "no"})
    assert profile.training.method == "full"
    found = savers(profile, bf16=True)
    mixed, fused = _tip(found, "use mixed precision"), _tip(found, "fuse the optimizer step")
    assert "fp16" not in mixed and "optimizer.fused_backward = true" in fused, mixed
    both = tiny_profile(tmp_path, precision={"mixed_precision": _precision(mixed)}, optimizer={"fused_backward": True})
    assert not [problem for problem in cross_field_problems(both) if "fused_backward" in problem.key], both


def test_without_bf16_the_fused_step_is_said_to_need_fp32(tmp_path: Path) -> None:
    found = savers(tiny_profile(tmp_path, precision={"mixed_precision": "no"}), bf16=False)
    mixed, fused = _tip(found, "use mixed precision"), _tip(found, "fuse the optimizer step")
    assert _precision(mixed) == "fp16" and _precision(fused) == "no" and "needs bf16 or fp32" in fused, fused
    with pytest.raises(ProfileError, match="fused_backward"):  # what the mixed precision tip and the fused step made
        tiny_profile(tmp_path, precision={"mixed_precision": "fp16"}, optimizer={"fused_backward": True})
    # Already fused: fp16 is offered only with the fused step off.
    fused_already = savers(tiny_profile(tmp_path, precision={"mixed_precision": "no"}, optimizer={"fused_backward": True}),
                           bf16=False)
    assert "optimizer.fused_backward = false" in _tip(fused_already, "use mixed precision")
