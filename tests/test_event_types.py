"""An events.jsonl line whose fields have the wrong types (another dbtui's writer, a hand edit, a cut-off disk) is skipped
as a line that is not JSON is: attach, report and runs crashed on it with "a bug in dbtui"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dbtui.cli import main
from engine.events import (CheckpointSaved, CheckpointsRotated, PhaseFinished, PhaseStarted, RunFinished, RunStarted,
                           StepEnded, event_from_dict)
from engine.runs.folder import RunFolder, RunState
from engine.runs.sinks import read_events

CORRUPTIONS = [
    ("run_finished", "outputs", "x"),
    ("run_finished", "seconds", "x"),
    ("run_finished", "seconds", float("nan")),
    ("run_finished", "time", 1e308),
    ("run_finished", "time", float("inf")),
    ("run_started", "profile", [1]),
    ("step_ended", "step", "seven"),
    ("step_ended", "loss", "x"),
    ("step_ended", "eta_s", "soon"),
    ("phase_finished", "seconds", "x"),
    ("checkpoints_rotated", "steps", ["one"]),
    ("checkpoints_rotated", "keep_last_n", "x"),
]


def _events() -> list[dict]:
    events = [RunStarted(run_dir="r", profile={}, hardware={}, versions={}, total_steps=10),
              PhaseStarted(phase="training", total=10),
              StepEnded(step=2, total_steps=10, epoch=0, loss=0.1, smoothed_loss=0.1, lr=1e-4, it_per_s=1.0, eta_s=1.0),
              CheckpointsRotated(steps=[1], keep_last_n=1),  # at the save, before its line
              CheckpointSaved(step=2, path="checkpoints/step-00000002", seconds=1.0),
              PhaseFinished(phase="training", seconds=1.0),
              RunFinished(step=2, outputs={"diffusers": "x"}, seconds=2.0)]
    return [event.to_dict() for event in events]


@pytest.mark.parametrize(("kind", "key", "value"), CORRUPTIONS)
def test_a_line_of_the_wrong_types_is_skipped_and_attach_report_and_runs_go_on(kind: str, key: str, value: object,
                                                                               tmp_path: Path, capsys) -> None:
    folder = RunFolder(tmp_path / "run").create()
    lines = _events()
    for line in lines:
        if line["event"] == kind:
            line[key] = value
    folder.events.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    folder.write_state(RunState(pid=999999, status="finished", step=2, total_steps=10))
    assert kind not in [event.kind for event in read_events(folder.events)]
    assert len(list(read_events(folder.events))) == len(lines) - 1
    for command in (["attach", str(folder.path), "--plain"], ["report", str(folder.path)], ["runs", "--dir", str(tmp_path)]):
        assert main(command) == 0, command
    assert "bug in dbtui" not in capsys.readouterr().err


@pytest.mark.parametrize("line", [[1], "x", None, 3])
def test_a_line_that_is_json_but_not_an_object_is_no_event(line: object) -> None:
    with pytest.raises(ValueError, match="an event is a JSON object"):
        event_from_dict(line)  # type: ignore[arg-type]


def test_a_nan_loss_is_still_an_event_and_a_whole_number_a_float() -> None:
    """A diverged run's NaN loss is what happened, not damage; JSON writes 1.0 as 1."""
    step = event_from_dict({"event": "step_ended", "step": 3, "total_steps": 10, "epoch": 0, "loss": float("nan"),
                            "smoothed_loss": 1, "lr": 1e-4, "it_per_s": 1.0, "eta_s": None})
    assert isinstance(step, StepEnded) and step.loss != step.loss and step.smoothed_loss == 1.0


def test_the_rotations_deletions_are_a_plain_line_and_every_reader_of_the_log_goes_on(tmp_path: Path, capsys) -> None:
    """checkpoints_rotated, the checkpoints saving.keep_last_n's rotation deleted (which the best step's advice reads):
    `dbtui attach --plain` says it, the dashboard, report and runs read past it."""
    import io

    from rich.console import Console

    from dbtui.console import RichDashboard
    from engine.runs.follow import follow_events

    folder = RunFolder(tmp_path / "run").create()
    folder.events.write_text("".join(json.dumps(line) + "\n" for line in _events()), encoding="utf-8")
    folder.write_state(RunState(pid=999999, status="finished", step=2, total_steps=10))
    assert [event.steps for event in read_events(folder.events) if isinstance(event, CheckpointsRotated)] == [[1]]
    assert main(["attach", str(folder.path), "--plain"]) == 0
    out = capsys.readouterr().out
    assert "deleted the checkpoint of step 1 (saving.keep_last_n = 1)\ncheckpoint at step 2" in out
    for command in (["report", str(folder.path)], ["runs", "--dir", str(tmp_path)]):
        assert main(command) == 0, command
    assert "bug in dbtui" not in capsys.readouterr().err
    dashboard = RichDashboard("t", console=Console(file=io.StringIO(), color_system=None))
    for event in follow_events(folder, follow=False):
        dashboard(event)
    rendered = io.StringIO()
    Console(file=rendered, width=120, color_system=None).print(dashboard._render())
    assert "checkpoint at step 2" in rendered.getvalue()


def test_the_wizards_log_says_the_rotations_deletions_as_attach_does() -> None:
    """The dashboard's log named each checkpoint's path ('Checkpoint at step 3: …/step-00000003') and never that
    saving.keep_last_n's rotation deleted it, which `dbtui attach` says: a user reading the wizard looked for a
    checkpoint that was gone."""
    from dbtui.screens.run_lines import event_line

    assert event_line(CheckpointsRotated(steps=[3], keep_last_n=1)) == "Deleted the checkpoint of step 3 (saving.keep_last_n = 1)"
    assert event_line(CheckpointsRotated(steps=[3, 6], keep_last_n=2)) == ("Deleted the checkpoints of steps 3, 6 "
                                                                          "(saving.keep_last_n = 2)")
