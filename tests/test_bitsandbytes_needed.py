"""bitsandbytes, where a profile needs it (an NF4 or int8 base under a LoRA, an 8-bit optimizer): missing, it is said
by `dbtui validate` and the wizard and refused by `dbtui run` before the model loads."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from engine.profile.library_problems import missing_library_problems
from engine.profile_checks import check_profile
from engine.runs.launcher import RunInputsMissingError, check_inputs
from engine.training.accelerator import check_sharding_installed
from tests.training_helpers import tiny_profile

LORA = {"method": "lora"}


@pytest.fixture
def no_bitsandbytes(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "bitsandbytes" else real_find_spec(name, *a))


def _keys(profile) -> list[str]:
    return [problem.key for problem in missing_library_problems(profile)]


def test_settings_that_need_bitsandbytes_are_said_where_it_is_not_installed(tmp_path: Path, no_bitsandbytes: None) -> None:
    assert _keys(tiny_profile(tmp_path, model={"quantize": "nf4"}, training=LORA)) == ["model.quantize"]
    assert _keys(tiny_profile(tmp_path, model={"quantize": "int8"}, training=LORA)) == ["model.quantize"]
    assert _keys(tiny_profile(tmp_path, model={"quantize": "fp8"}, training=LORA)) == []  # torch's own float8
    assert _keys(tiny_profile(tmp_path, optimizer={"name": "adamw8bit"})) == ["optimizer.name"]
    lion = tiny_profile(tmp_path, optimizer={"name": "lion8bit"}, model={"quantize": "nf4"}, training=LORA)
    assert _keys(lion) == ["model.quantize", "optimizer.name"]
    assert 'set name = "lion"' in missing_library_problems(lion)[1].message
    # `dbtui validate` and the wizard's review list them as what this machine lacks; a run refuses before its model loads.
    assert [p.key for p in check_profile(lion).missing_here] == ["model.quantize", "optimizer.name"]
    with pytest.raises(RunInputsMissingError, match="needs bitsandbytes, which is not installed here"):
        check_inputs(lion)
    check_sharding_installed(lion)  # DeepSpeed's refusal alone: the others are not sharding's


def test_nothing_is_said_where_bitsandbytes_is_installed_or_not_needed(tmp_path: Path) -> None:
    if importlib.util.find_spec("bitsandbytes") is not None:
        assert _keys(tiny_profile(tmp_path, optimizer={"name": "adamw8bit"}, model={"quantize": "nf4"}, training=LORA)) == []
    assert _keys(tiny_profile(tmp_path)) == []

