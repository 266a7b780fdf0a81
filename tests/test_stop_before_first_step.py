"""`dbtui stop` on a trainer that reads "running" but has not trained a step in this attempt (its base scoring round,
the moment after set-up): it stops at once, before step 1, with nothing saved. The stop said "it acts at the next step
boundary"."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from dbtui.cli import main
from engine.events import PhaseStarted, StepEnded
from engine.runs.control import trained_since
from engine.runs.folder import RunFolder, RunState
from engine.runs.sinks import JsonlSink


def _step(step: int, at: float) -> StepEnded:
    return StepEnded(step=step, total_steps=10, epoch=0, loss=0.1, smoothed_loss=0.1, lr=1e-4, it_per_s=1.0, eta_s=None,
                     time=at)


def _log(folder: RunFolder, *events) -> None:
    sink = JsonlSink(folder.events)
    for event in events:
        sink(event)
    sink.close()


@pytest.mark.parametrize(("trained", "said"), [(False, "still setting up, so it stops before the first step"),
                                               (True, "it acts at the next step boundary")])
def test_a_running_trainer_without_a_step_of_its_own_is_said_to_stop_before_it(trained: bool, said: str, tmp_path: Path,
                                                                               capsys, trainer_of) -> None:
    folder = RunFolder(tmp_path / "runs" / "t").create()
    started = time.time()
    # A resumed run: the earlier attempt's steps are in the log, before this trainer started.
    events = [_step(3, started - 100), PhaseStarted(phase="scoring", total=4, time=started + 1)]
    _log(folder, *events, *([_step(4, started + 2)] if trained else []))
    folder.write_state(RunState(pid=trainer_of(folder.path), status="running", step=3, total_steps=10, started=started))
    assert main(["stop", str(folder.path)]) == 0
    assert said in capsys.readouterr().out


def test_the_latest_step_is_found_reading_back_over_many_lines(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("engine.events.LOG_BLOCK", 64)  # many blocks
    folder = RunFolder(tmp_path / "runs" / "t").create()
    _log(folder, _step(1, 100.0), *[PhaseStarted(phase="caching", total=9, time=200.0 + n) for n in range(50)])
    with folder.events.open("a", encoding="utf-8") as file:
        file.write('{"event": "step_ended", "time": 300')  # half written: the one before it counts
    assert trained_since(folder.events, 100.0)
    assert not trained_since(folder.events, 150.0)
    # Deleted under a trainer that reads "running" (it has trained a step): its stop saves a checkpoint, as said.
    assert trained_since(folder.path / "none.jsonl", 0.0)


def test_a_compact_json_log_from_another_writer_is_read(tmp_path: Path) -> None:
    """The event log is a public format: compact JSON ("event":"step_ended") is a step as much as dbtui's own spacing.
    A step_ended text inside another event is not one."""
    events = tmp_path / "events.jsonl"
    events.write_text('{"event":"step_ended","time":200,"step":1}\n'
                      '{"event":"warning","time":300,"message":"x","advice":"step_ended"}\n', encoding="utf-8")
    assert trained_since(events, 100.0)
    assert not trained_since(events, 250.0)


@pytest.mark.parametrize("earlier", [False, True])
def test_a_stop_after_the_last_step_says_the_run_is_finishing_and_leaves_no_request(earlier: bool, tmp_path: Path,
                                                                                      capsys, trainer_of) -> None:
    """During the final export and scoring round the trainer reads no request (they are read at step boundaries): `dbtui
    stop` said "it acts at the next step boundary", and the run finished as if not asked. A training phase ended by an
    earlier attempt (before this trainer started) is not this one's."""
    from engine.events import PhaseFinished

    folder = RunFolder(tmp_path / "runs" / "t").create()
    started = time.time()
    over = PhaseFinished(phase="training", seconds=9.0, time=started + (-50 if earlier else 3))
    _log(folder, _step(10, started + 2 - (100 if earlier else 0)), over,
         PhaseStarted(phase="scoring", total=4, description="step 10", time=started + 4))
    folder.write_state(RunState(pid=trainer_of(folder.path), status="running", step=10, total_steps=10, started=started))
    assert main(["stop", str(folder.path)]) == 0
    out = capsys.readouterr().out
    assert ("nothing left to stop" in out) != earlier
    assert (folder.control / "stop").exists() == earlier
    if not earlier:
        assert main(["save", str(folder.path)]) == 2
        assert "takes no save request" in capsys.readouterr().err
        assert not (folder.control / "save").exists()
