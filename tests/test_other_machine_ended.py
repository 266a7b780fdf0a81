"""What `dbtui run` on a machine other than 0 says when the run ended there without finishing."""

from __future__ import annotations

from pathlib import Path

import pytest

import dbtui.cli.other_machine as other_machine
from engine.runs.meeting import MET, say_ended
from tests.test_other_machine import launcher, started  # noqa: F401  (launcher: a fixture)


def test_a_run_stopped_on_machine_0_before_its_first_step_is_not_resumed_from_a_checkpoint_it_never_saved(
        tmp_path: Path, launcher, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
        capsys: pytest.CaptureFixture[str]) -> None:
    """Stopped on machine 0 while it set up (loading, caching): machine 1 said to add --resume once machine 0's
    checkpoints/step-00000000 was copied here, a checkpoint no run saves; its resume was refused for want of one."""
    say_ended("stopped", 0)
    run = started(tmp_path, launcher, MET + " (2 processes)\n" + capsys.readouterr().out)
    run.folder.checkpoints = run.folder.path / "checkpoints"
    monkeypatch.setattr(other_machine, "_wait", lambda process, meeting, rank: 0)
    assert other_machine.show_other_machine(run, detach=False) == 0
    said = capsys.readouterr().out
    assert "step-00000000" not in said and "--resume --set" not in said, said
    assert said.endswith("this machine's trainer stopped with the run before its first step (stopped on machine 0, "
                         "which saved no checkpoint). To go on: `dbtui run PROFILE --set launch.machine_rank=1` trains "
                         "this machine's part again from the start, as machine 0 starts the run again: "
                         f"{tmp_path / 'run'} holds no checkpoint (where machine 0 resumes from one, copy it here and add "
                         f"--resume; add the --set values this machine was started with: they are kept in "
                         f"{tmp_path / 'run' / 'profile-machine-1.toml'})\n"), said
