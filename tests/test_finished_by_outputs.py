"""A run is known finished by its outputs (outputs/profile.toml) only where the trainer left no word of its end."""

from __future__ import annotations

import os
import time
from pathlib import Path

from engine.events import RunFailed, RunStarted, StepEnded
from engine.runs.folder import RunState
from engine.runs.launcher import _prepare
from engine.runs.sinks import JsonlSink
from tests.runs_helpers import run_with_checkpoints


def test_a_run_that_failed_after_its_outputs_were_written_is_not_taken_for_finished(tmp_path: Path) -> None:
    """A final preview that fails (out of memory) comes after outputs/profile.toml: the state says "failed", the events
    end in run_failed, `dbtui runs` listed it failed and `dbtui run` said to resume it, but resume refused it as "a
    finished run". The outputs stand for a finish where the state is lost or its trainer died without writing its end."""
    folder, profile = run_with_checkpoints(tmp_path, [35])
    sink = JsonlSink(folder.events)
    for event in (RunStarted(run_dir=str(folder.path), profile={}, hardware={}, versions={}, total_steps=40),
                  StepEnded(step=40, total_steps=40, epoch=0, loss=0.1, smoothed_loss=0.1, lr=1e-4, it_per_s=1.0, eta_s=0.0),
                  RunFailed(reason="the GPU ran out of memory", step=40)):
        sink(event)
    sink.close()
    folder.outputs.mkdir()
    (folder.outputs / "profile.toml").write_text("name = 't'\n")  # the model whole, before the final preview failed
    failed = RunState(pid=os.getpid(), status="failed", step=40, total_steps=40, started=time.time() - 60)
    folder.write_state(failed)
    assert folder.status() == "failed" and folder.finished_step() is None
    _prepare(folder, profile, "latest", None)  # not refused: it resumes from step 35, as the failure said
    folder.state_file.unlink()  # lost: the outputs say it finished, as the events cannot
    assert folder.finished_step() == 40 and folder.status() == "finished"
