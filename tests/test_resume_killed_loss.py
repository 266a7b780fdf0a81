"""`dbtui resume RUN --from N` killed (kill -9) while it set up: `dbtui runs` showed "-" as the run's last loss, though
the events log holds the loss of step N, where the run stands, from the attempt that trained it."""

from __future__ import annotations

import sys
from pathlib import Path

from dbtui.cli import main
from engine.events import StepEnded
from engine.runs.folder import RunState
from engine.runs.sinks import JsonlSink
from tests.runs_helpers import run_with_checkpoints

LOSSES = {1000: 0.3, 1154: 0.2, 1160: 0.1}


def _row(folder, capsys) -> dict:
    import json

    assert main(["runs", str(folder.path.parent), "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    return row


def test_a_resume_killed_setting_up_shows_the_loss_of_the_step_it_stands_at(tmp_path: Path, monkeypatch, capsys) -> None:
    from engine.runs import launcher

    folder, profile = run_with_checkpoints(tmp_path, [1000, 1154])
    sink = JsonlSink(folder.events)
    for step, loss in sorted(LOSSES.items()):
        sink(StepEnded(step=step, total_steps=2000, epoch=1, loss=loss, smoothed_loss=loss, lr=1e-4, it_per_s=1.0, eta_s=None))
    sink.close()
    folder.write_state(RunState(pid=0, status="stopped", step=1160, total_steps=2000, last_loss=0.1))
    monkeypatch.setattr(launcher, "worker_command", lambda *args: [sys.executable, "-c", "import time; time.sleep(60)"])
    # From the latest checkpoint, then twice from an earlier one (the second after the first was killed: its state,
    # of that step, held no loss).
    for resume, step in (("latest", 1154), (str(folder.checkpoints / "step-00001000"), 1000), ("latest", 1000)):
        started = launcher.start_run(profile, resume=resume)
        started.process.kill()  # kill -9 in its set-up: the trainer never wrote its own state
        started.process.wait()
        row = _row(folder, capsys)
        assert (row["status"], row["step"], row["last_loss"]) == ("crashed", step, LOSSES[step]), row
