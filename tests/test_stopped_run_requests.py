"""`dbtui save` (or the dashboard's c) in the moment after a stop was taken, while the stopped trainer closes: it said
the run "is writing the final export and preview/scoring round", which a stopped run never writes. The trainer's log
now says its training phase was ended by a stop, and the request is answered with what a stop's end does."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from dbtui.cli import main
from dbtui.screens.run_life import ask
from engine.runs.control import request
from engine.runs.folder import RunFolder, RunState
from tests.training_helpers import tiny_profile


def _stopped_run(tmp_path: Path) -> tuple[RunFolder, float]:
    """A tiny run stopped by `dbtui stop`'s request after step 1, as it reads once its training phase has ended."""
    from engine.runs.in_process import train
    from engine.runs.supervisor import Supervisor

    profile = tiny_profile(tmp_path, training={"max_train_steps": 6})
    folder = RunFolder(tmp_path / "runs" / "t").create()
    cancel = threading.Event()
    supervisor = Supervisor(folder, cancel=cancel)
    stop_after_one = lambda trainer, step: request(folder, "stop") if step == 1 else None
    started = time.time()
    assert train(profile, folder.path, cancel=cancel, step_hooks=[stop_after_one, supervisor.on_step],
                 trainer_hook=supervisor.attach).status == "stopped"
    return folder, started


def test_a_save_asked_of_a_stopping_run_says_what_a_stop_does_not_the_final_export(tmp_path: Path, capsys,
                                                                                    trainer_of) -> None:
    folder, started = _stopped_run(tmp_path)
    # The moment before it ends: its trainer still live and its state still "running".
    folder.write_state(RunState(pid=trainer_of(folder.path), status="running", step=1, total_steps=6, started=started))
    assert main(["save", str(folder.path)]) == 2
    said = " ".join(capsys.readouterr().err.split())
    assert "final export and preview" not in said
    assert "was stopped and is closing: a stopped run writes no final export or previews" in said
    assert "its stop saved a checkpoint of its last step" in said and "takes no save request" in said
    assert not (folder.control / "save").exists()
    dashboard = ask(None, folder.path, "save", stepped=True)
    assert dashboard.startswith("The run was stopped and is closing: a stopped run writes no final export or previews")


def test_a_run_stopped_before_its_first_step_is_told_where_its_resume_starts(tmp_path: Path) -> None:
    # "trains on from there" of a run with no checkpoint at all, which a resume trains from step 0.
    from engine.runs.control import stop_end_words

    folder = RunFolder(tmp_path / "runs" / "t").create()
    folder.events.write_text('{"event": "phase_started", "phase": "load_model", "time": 1}\n')
    folder.write_state(RunState(pid=1, status="running", step=0, total_steps=6, started=time.time()))
    said = stop_end_words(folder)
    assert "stopped before its first step, with no checkpoint" in said and "trains it from the start" in said
    (folder.checkpoints / "step-00000002").mkdir(parents=True)
    (folder.checkpoints / "step-00000002" / "manifest.json").write_text('{"step": 2}')
    assert "with nothing new to save" in (said := stop_end_words(folder)) and "trains on from its checkpoint" in said
