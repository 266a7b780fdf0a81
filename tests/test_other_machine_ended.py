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


def test_a_long_log_is_read_for_the_trainers_own_lines_without_holding_it_whole(
        tmp_path: Path, launcher, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
        capsys: pytest.CaptureFixture[str]) -> None:
    """Machine 1 read the whole log of this start into memory as the run ended, and split it into lines: a 100 MB log
    took 280 MiB and 3 s. It now keeps only the trainer's own lines, reading a piece at a time; one that a progress
    bar's '\\r' runs into is still found."""
    import tracemalloc

    why = "dbtui trainer: the disk is full (or the quota used up) writing 'state.json'"
    other = "a library's warning, repeated over a long run, long enough to be read in pieces\n" * 250_000  # 20 MB
    run = started(tmp_path, launcher, MET + " (2 processes)\n" + other + "caching 10%\rcaching 20%\r" + why + "\n" + other)
    monkeypatch.setattr(other_machine, "_wait", lambda process, meeting, rank: 1)
    tracemalloc.start()
    try:
        assert other_machine.show_other_machine(run, detach=False) == 1
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert f"this machine's trainer stopped with exit status 1: {why}; see its log" in capsys.readouterr().err
    assert peak < 8 << 20, peak  # a few pieces of the 40 MB log, not the whole of it
