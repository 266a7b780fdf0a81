"""A folder inside a run (a checkpoint, its outputs) given where a run goes is told the run folder to give."""

from __future__ import annotations

from pathlib import Path

import pytest

from dbtui.cli import main


@pytest.mark.parametrize("command", [["report"], ["attach"], ["resume"], ["export"], ["stop"]])
def test_a_checkpoint_folder_given_as_the_run_names_the_run_and_the_option(command: list[str], tmp_path: Path,
                                                                             monkeypatch, capsys) -> None:
    """`dbtui export runs/d30/checkpoints/step-00000010` said only "is not a run folder (no events.jsonl); `dbtui runs`
    lists them", which lists runs/d30, the folder the checkpoint is in, without saying how to name the checkpoint."""
    from engine.runs.folder import RunFolder, RunState

    run = RunFolder(tmp_path / "runs" / "d30").create()
    run.write_state(RunState(pid=1, status="stopped"))
    (run.checkpoints / "step-00000010").mkdir(parents=True)
    (run.path / "outputs").mkdir()
    monkeypatch.chdir(tmp_path)
    assert main([*command, "runs/d30/checkpoints/step-00000010"]) == 2
    said = " ".join(capsys.readouterr().err.split())
    assert "'runs/d30/checkpoints/step-00000010' is inside the run folder runs/d30: give that" in said, said
    assert "`dbtui export runs/d30 --step 10`" in said and "`dbtui resume runs/d30 --from 10`" in said, said
    assert main([*command, "runs/d30/outputs"]) == 2
    said = " ".join(capsys.readouterr().err.split())
    assert "'runs/d30/outputs' is inside the run folder runs/d30: give that" in said and "--step" not in said, said


def test_a_checkpoint_named_inside_the_runs_folder_names_the_run_too(tmp_path: Path, monkeypatch, capsys) -> None:
    """`dbtui export d30` finds runs/d30, yet `dbtui export d30/checkpoints/step-00000010` was said only "is not a run
    folder (no events.jsonl)": the folder inside a run was looked for here alone, not in --dir as the run is."""
    from engine.runs.folder import RunFolder, RunState

    run = RunFolder(tmp_path / "runs" / "d30").create()
    run.write_state(RunState(pid=1, status="stopped"))
    (run.checkpoints / "step-00000010").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert main(["export", "d30/checkpoints/step-00000010"]) == 2
    said = " ".join(capsys.readouterr().err.split())
    assert "'d30/checkpoints/step-00000010' is inside the run folder runs/d30: give that" in said, said
    assert "`dbtui export runs/d30 --step 10`" in said, said
