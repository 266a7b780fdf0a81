"""precision.attention = "xformers" on a machine without xformers: `dbtui validate` said the profile was valid and
`dbtui run --detach` said the trainer started; the trainer failed after loading its model. Now validate warns and the
launch refuses it, before anything starts."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from dbtui.cli import main
from engine.profile import save_profile
from engine.runs.folder import run_dir_for
from engine.runs.inputs_check import RunInputsMissingError
from engine.runs.launcher import start_run
from training_helpers import tiny_profile


@pytest.fixture
def no_xformers(monkeypatch: pytest.MonkeyPatch) -> None:
    found = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *rest: None if name == "xformers" else found(name, *rest))


def test_xformers_missing_is_refused_before_the_trainer_starts(tmp_path: Path, no_xformers: None, capsys) -> None:
    profile = tiny_profile(tmp_path, precision={"mixed_precision": "no", "gradient_checkpointing": False,
                                                "attention": "xformers"})
    with pytest.raises(RunInputsMissingError, match=r'precision\.attention: "xformers" needs the xformers package'):
        start_run(profile, detach=True)
    assert not run_dir_for(profile).exists()
    assert main(["validate", "--elsewhere", str(save_profile(profile, tmp_path / "p.toml"))]) == 0
    out = capsys.readouterr().out
    assert 'warning: ' in out and 'precision.attention: "xformers" needs the xformers package' in out


def test_sdpa_needs_nothing(tmp_path: Path, no_xformers: None) -> None:
    from engine.profile.library_problems import missing_library_problems

    assert missing_library_problems(tiny_profile(tmp_path)) == []
