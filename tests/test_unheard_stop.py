"""The timer of a foreground run's stop asked before the first step (dbtui/cli/watch.py): it ends the processes of a
trainer that never reads its run folder, and only those."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from dbtui.cli import watch as watch_module
from engine.events import PhaseStarted, RunFinished, RunStarted
from engine.runs.control import request
from engine.runs.folder import RunFolder
from engine.runs.sinks import JsonlSink
from tests.runs_helpers import CtrlCInSetUp


class Trainer:
    """A stand-in for the launcher's process: running until ``end``."""

    pid = 0
    returncode: int | None = None

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        while self.returncode is None:
            time.sleep(0.01)
        return self.returncode

    def end(self) -> None:
        self.returncode = 0


def test_a_stop_the_trainer_took_leaves_no_timer_that_ends_it_at_a_second_stop(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A Ctrl-C before the first step of a run of several processes armed a 5-second timer; the trainer took that stop
    in time, but the timer stayed armed, so a second stop (`dbtui stop`, another SIGTERM) before step 1 ended its
    processes at once, killing a trainer that was already ending by itself."""
    monkeypatch.setattr(watch_module, "UNHEARD_STOP_S", 0.3)
    folder = RunFolder(tmp_path / "run").create()
    sink = JsonlSink(folder.events)
    sink(RunStarted(run_dir=str(folder.path), profile={}, hardware={}, versions={}, total_steps=9))
    sink(PhaseStarted(phase="base_round"))
    trainer, ended = Trainer(), []
    monkeypatch.setattr(RunFolder, "is_live", lambda self: trainer.returncode is None)
    monkeypatch.setattr(watch_module, "_end_unheard", lambda process, folder: ended.append(1) or process.end())
    stop = folder.control / "stop"

    def trainer_hears_its_folder() -> None:
        while not stop.exists():
            time.sleep(0.01)
        time.sleep(0.1)
        stop.unlink()  # taken, well within the timer
        time.sleep(0.6)  # the timer's time is past
        request(folder, "stop")  # a second stop, which this trainer (ending already) leaves
        time.sleep(0.6)
        sink(RunFinished(step=0, outputs={}, seconds=1.0, status="stopped"))
        sink.close()
        trainer.end()

    threading.Thread(target=trainer_hears_its_folder, daemon=True).start()
    watched = watch_module.watch(folder, CtrlCInSetUp(folder), trainer, own_session=True)  # type: ignore[arg-type]
    assert watched.interrupted and watched.last is not None and watched.last.kind == "run_finished"
    assert ended == []


def test_a_stop_the_trainer_does_not_take_ends_its_processes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watch_module, "UNHEARD_STOP_S", 0.3)
    folder = RunFolder(tmp_path / "run").create()
    sink = JsonlSink(folder.events)
    sink(PhaseStarted(phase="load_model"))
    sink.close()
    trainer, ended = Trainer(), []
    monkeypatch.setattr(RunFolder, "is_live", lambda self: trainer.returncode is None)
    monkeypatch.setattr(watch_module, "_end_unheard", lambda process, folder: ended.append(1) or process.end())
    began = time.monotonic()
    watched = watch_module.watch(folder, CtrlCInSetUp(folder), trainer, own_session=True)  # type: ignore[arg-type]
    assert watched.interrupted and ended == [1] and time.monotonic() - began < 5
