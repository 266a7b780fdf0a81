"""A profile given where a run folder goes (`dbtui attach my.toml` after `dbtui run my.toml --detach`) is told the
run folder that profile trains in."""

from __future__ import annotations

from pathlib import Path

import pytest

from dbtui.cli import main


@pytest.mark.parametrize("command", [["attach"], ["report"], ["stop"], ["export"], ["resume"]])
def test_a_profile_given_for_a_run_is_told_its_run_folder(command: list[str], tmp_path: Path, monkeypatch,
                                                           capsys) -> None:
    from engine.runs.folder import RunFolder, RunState

    monkeypatch.chdir(tmp_path)
    Path("my.toml").write_text('schema_version = 1\nname = "zwx"\n[model]\npretrained = "builtin:tiny-sd1"\n'
                               '[[concepts]]\ninstance_dir = "builtin:demo-instance"\ninstance_prompt = "photo of zwx"\n'
                               '[saving]\noutput_dir = "out"\n')
    assert main([*command, "my.toml"]) == 2  # its run not started yet
    assert "'my.toml' is a profile, not a run folder: as written it trains in out/zwx, which holds no run yet" in capsys.readouterr().err
    RunFolder(tmp_path / "out" / "zwx").create().write_state(RunState(pid=1, status="finished"))
    assert main([*command, "my.toml"]) == 2
    assert "'my.toml' is a profile, not a run folder: its run is out/zwx; give that" in capsys.readouterr().err
