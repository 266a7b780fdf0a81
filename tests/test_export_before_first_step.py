"""`dbtui export RUN` of a run stopped while it generated class images, before its first training step: it said "no
complete checkpoint (saving.every_n_steps decides when they are kept)", a setting that never had a step to save."""

from __future__ import annotations

import time
from pathlib import Path

from dbtui.cli import main
from engine.events import PhaseFinished, PhaseStarted, RunFinished, StepEnded
from engine.runs.folder import RunFolder, RunState
from engine.runs.sinks import JsonlSink
from runs_helpers import profile_file


def _ended_run(tmp_path: Path, status: str, *events) -> RunFolder:
    folder = RunFolder(tmp_path / "runs" / "r").create()
    folder.profile.write_text(profile_file(tmp_path, name="r").read_text())
    at = time.time()
    sink = JsonlSink(folder.events)
    for event in (PhaseStarted(phase="class_images", total=400, time=at),
                  PhaseFinished(phase="class_images", seconds=3.5, stopped=True, time=at + 1), *events):
        sink(event)
    sink.close()
    step = max((event.step for event in events if isinstance(event, StepEnded)), default=0)
    folder.write_state(RunState(pid=0, status=status, step=step, total_steps=300))
    return folder


def test_a_run_stopped_while_it_made_class_images_says_so_with_its_resume(tmp_path: Path, capsys) -> None:
    folder = _ended_run(tmp_path, "stopped", RunFinished(step=0, outputs={}, seconds=4.0, status="stopped"))
    assert main(["export", str(folder.path)]) == 2
    err = capsys.readouterr().err
    assert f"{folder.path} has nothing to export: the run stopped before its first training step" in err
    assert f"`dbtui resume {folder.path}` trains it from the start" in err  # as `dbtui attach` says it
    assert "every_n_steps" not in err


def test_a_run_that_trained_steps_and_saved_none_is_still_told_of_every_n_steps(tmp_path: Path, capsys) -> None:
    step = StepEnded(step=3, total_steps=300, epoch=0, loss=0.1, smoothed_loss=0.1, lr=1e-4, it_per_s=1.0, eta_s=None)
    folder = _ended_run(tmp_path, "failed", step)
    assert main(["export", str(folder.path)]) == 2
    err = capsys.readouterr().err
    assert "saving.every_n_steps decides when they are kept" in err and "before its first training step" not in err
