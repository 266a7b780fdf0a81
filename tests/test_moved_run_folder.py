"""A run folder copied or moved elsewhere shows its files where they are now, not where the trainer wrote them."""

from __future__ import annotations

import shutil
from pathlib import Path

from engine.events import CheckpointSaved, RunFinished, RunStarted, SampleSaved, SamplesScored
from engine.runs.folder import RunFolder
from engine.runs.follow import follow_events
from engine.runs.report import read_run


def _run(folder: RunFolder, *, finished: bool = True) -> None:
    old = str(folder.path)
    events = [RunStarted(run_dir=old, profile={}, hardware={}, versions={}, total_steps=4),
              SampleSaved(step=4, paths=[f"{old}/samples/step-000004/0.png"], grid=f"{old}/samples/step-000004/grid.png"),
              SamplesScored(step=4, scores={"subject": 0.5}, folder=f"{old}/evaluation/step-000004"),
              CheckpointSaved(step=4, path=f"{old}/checkpoints/step-000004")]
    if finished:
        events.append(RunFinished(step=4, seconds=1.0, outputs={"diffusers": f"{old}/outputs/diffusers",
                                                                 "elsewhere": "/srv/models/x.safetensors"}))
    with folder.events.open("a", encoding="utf-8") as file:
        file.writelines(event.to_json() + "\n" for event in events)


def _copied(tmp_path: Path) -> tuple[RunFolder, RunFolder]:
    old = RunFolder(tmp_path / "old" / "runs" / "demo").create()
    _run(old)
    shutil.copytree(old.path, tmp_path / "backup" / "demo")
    return old, RunFolder(tmp_path / "backup" / "demo")


def test_attach_on_a_copied_folder_names_the_copys_files(tmp_path: Path) -> None:
    old, copy = _copied(tmp_path)
    here = copy.path.absolute()
    events = {event.kind: event for event in follow_events(copy, follow=False)}
    assert events["run_finished"].outputs == {"diffusers": str(here / "outputs" / "diffusers"),
                                              "elsewhere": "/srv/models/x.safetensors"}  # outside the run: as logged
    assert events["checkpoint_saved"].path == str(here / "checkpoints" / "step-000004")
    assert events["sample_saved"].grid == str(here / "samples" / "step-000004" / "grid.png")
    assert events["sample_saved"].paths == [str(here / "samples" / "step-000004" / "0.png")]
    assert events["samples_scored"].folder == str(here / "evaluation" / "step-000004")
    # The folder where it was written still names its own files.
    original = {event.kind: event for event in follow_events(old, follow=False)}
    assert original["run_finished"].outputs["diffusers"] == str(old.path / "outputs" / "diffusers")


def test_a_moved_folder_resumed_names_each_attempts_files_in_it(tmp_path: Path) -> None:
    old = RunFolder(tmp_path / "old" / "demo").create()
    _run(old, finished=False)
    moved = RunFolder(tmp_path / "new" / "demo")
    moved.path.parent.mkdir()
    shutil.move(old.path, moved.path)
    _run(moved)  # the resume, logged in its new place
    saved = [event.path for event in follow_events(moved, follow=False) if event.kind == "checkpoint_saved"]
    assert saved == [str(moved.path / "checkpoints" / "step-000004")] * 2


def test_the_report_of_a_copied_folder_names_the_copys_outputs(tmp_path: Path) -> None:
    _, copy = _copied(tmp_path)
    record = read_run(copy.path)
    assert isinstance(record.end, RunFinished)
    assert record.end.outputs["diffusers"] == str(copy.path.absolute() / "outputs" / "diffusers")
