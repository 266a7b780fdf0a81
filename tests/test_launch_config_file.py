"""`launch.config_file` naming no file here: `dbtui validate` said the profile was valid, and `dbtui run` made the run
folder and started `accelerate launch`, which stopped with its own traceback (the run then advised a `dbtui resume` that
failed the same way). A relative one was kept relative in RUN/profile.toml, so a resume from another folder lost it."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.profile_checks import check_profile
from engine.runs.inputs_check import RunInputsMissingError, check_inputs
from engine.runs.launcher import anchored_profile
from tests.training_helpers import tiny_profile


@pytest.mark.parametrize("kind", ["missing", "folder"])
def test_an_accelerate_config_file_not_here_is_said_by_validate_and_refused_by_run(tmp_path: Path, kind: str) -> None:
    config = tmp_path / "accelerate.yaml"
    if kind == "folder":
        config.mkdir()
    profile = tiny_profile(tmp_path, launch={"config_file": str(config)})
    said = {p.key: p.message for p in check_profile(profile).missing_here}
    assert "accelerate config" in said["launch.config_file"]
    with pytest.raises(RunInputsMissingError, match="launch.config_file"):
        check_inputs(profile)
    assert not (tmp_path / "runs").exists()


def test_an_accelerate_config_file_here_passes_and_is_kept_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("accelerate.yaml").write_text("compute_environment: LOCAL_MACHINE\n", encoding="utf-8")
    profile = tiny_profile(tmp_path, launch={"config_file": "accelerate.yaml"})
    assert not [p for p in check_profile(profile).missing_here if p.key == "launch.config_file"]
    assert anchored_profile(profile).launch.config_file == str(tmp_path / "accelerate.yaml")
