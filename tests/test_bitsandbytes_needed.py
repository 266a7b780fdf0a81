"""bitsandbytes, where a profile needs it (an NF4 or int8 base under a LoRA, an 8-bit optimizer): missing, it is said
by `dbtui validate` and the wizard and refused by `dbtui run` before the model loads; installed but broken (its
import raising, as a failed CUDA setup does), the run fails with what to do, not as a bug in dbtui."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from engine.models.quantize import QuantizeError
from engine.models.quantize import _bitsandbytes as quantize_bitsandbytes
from engine.profile.library_problems import missing_library_problems
from engine.profile_checks import check_profile
from engine.runs.inputs_check import RunInputsMissingError, check_inputs
from engine.support.deferred_import import defer
from engine.training.accelerator import check_sharding_installed, make_accelerator
from engine.training.bitsandbytes_check import BitsandbytesBrokenError, check_bitsandbytes_loads
from engine.training.optim import OptimizerUnavailableError
from engine.training.optim import _bitsandbytes as optimizer_bitsandbytes
from tests.training_helpers import tiny_profile

LORA = {"method": "lora"}


@pytest.fixture
def no_bitsandbytes(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "bitsandbytes" else real_find_spec(name, *a))


@pytest.fixture
def broken_bitsandbytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bitsandbytes whose import raises, deferred as the trainer's process defers it (engine/runs/in_process.py)."""
    package = tmp_path / "broken" / "bitsandbytes"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text('raise RuntimeError("CUDA Setup failed despite GPU being available.")\n')
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # so that the real one, if imported, comes back after
    monkeypatch.delitem(sys.modules, "bitsandbytes")
    monkeypatch.syspath_prepend(str(package.parent))
    defer("bitsandbytes")


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


def test_a_broken_bitsandbytes_is_said_as_such_by_the_optimizer_and_the_quantizer(broken_bitsandbytes: None) -> None:
    with pytest.raises(OptimizerUnavailableError, match="needs bitsandbytes, which cannot be loaded here .CUDA Setup failed"):
        optimizer_bitsandbytes("adamw8bit")
    with pytest.raises(QuantizeError, match="needs bitsandbytes, which cannot be loaded here .CUDA Setup failed"):
        quantize_bitsandbytes()


def test_a_run_that_uses_a_broken_bitsandbytes_is_refused_before_its_model_loads(tmp_path: Path,
                                                                                   broken_bitsandbytes: None) -> None:
    check_bitsandbytes_loads(tiny_profile(tmp_path))  # a full fine-tune with AdamW never loads it
    # peft loads it for every LoRA layer it adds, 8-bit optimizer or not.
    with pytest.raises(BitsandbytesBrokenError, match="pip uninstall bitsandbytes.$"):
        check_bitsandbytes_loads(tiny_profile(tmp_path, training=LORA))
    with pytest.raises(BitsandbytesBrokenError, match="--force-reinstall bitsandbytes., or change optimizer.name$"):
        check_bitsandbytes_loads(tiny_profile(tmp_path, optimizer={"name": "lion8bit"}))
    # The trainer asks as it sets up its accelerator, before the model loads.
    with pytest.raises(BitsandbytesBrokenError):
        make_accelerator(tiny_profile(tmp_path, training=LORA), "no", tmp_path)


def test_a_resume_is_told_to_install_bitsandbytes_not_to_change_what_its_checkpoints_trained_with(
        tmp_path: Path, no_bitsandbytes: None) -> None:
    """`dbtui resume` of an NF4, 8-bit Adam run on a machine without bitsandbytes advised quantize = "fp8" and
    name = "adamw": followed, the resume refused them, its checkpoints having been trained otherwise."""
    from engine.runs.launcher import start_run
    from tests.runs_helpers import run_with_checkpoints

    folder, _ = run_with_checkpoints(tmp_path, [5])
    profile = tiny_profile(tmp_path, optimizer={"name": "adamw8bit"}, model={"quantize": "nf4"}, training=LORA)
    with pytest.raises(RunInputsMissingError) as refused:
        start_run(profile, resume="latest", run_dir=folder.path)
    said = str(refused.value)
    assert said.count("pip install bitsandbytes") == 2 and "fp8" not in said and "set name" not in said
    assert "a resume keeps it" in said
    with pytest.raises(RunInputsMissingError, match='set quantize = "fp8"'):  # a new run may change them
        start_run(profile, run_dir=folder.path)


def test_a_resume_with_no_checkpoint_is_offered_what_a_new_run_is(tmp_path: Path, no_bitsandbytes: None) -> None:
    """A resume of a run stopped before its first checkpoint trains from the start, and may change its quantize: it
    was told only to install bitsandbytes, "the run's checkpoints were trained with it", where it had none."""
    from engine.runs.launcher import start_run
    from tests.runs_helpers import run_with_checkpoints

    folder, _ = run_with_checkpoints(tmp_path, [])
    profile = tiny_profile(tmp_path, model={"quantize": "nf4"}, training=LORA)
    with pytest.raises(RunInputsMissingError) as refused:
        start_run(profile, resume="latest", run_dir=folder.path)
    said = str(refused.value)
    assert 'pip install bitsandbytes, or set quantize = "fp8"' in said and "checkpoints" not in said
