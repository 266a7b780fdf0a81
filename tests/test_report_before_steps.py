"""The report of a run that ended early: while setting up (crashed, failed or stopped before its first step), when no
run_started event names its profile and the page reads the run folder's profile.toml; or after one step."""

from __future__ import annotations

from pathlib import Path

from engine.events import PhaseStarted, RunFailed
from engine.runs.folder import RunFolder
from engine.runs.report import write_report
from engine.runs.sinks import JsonlSink
from test_report import Page


def test_a_scored_run_that_failed_while_caching_names_its_model_and_says_scoring_was_on(tmp_path: Path) -> None:
    """It read model –, method – and 'This run was not scored. With [evaluation] enabled = true…', asking for what the
    profile already had."""
    folder = RunFolder(tmp_path / "early").create()
    folder.profile.write_text('schema_version = 1\nname = "early"\n[model]\npretrained = "some/model"\n'
                              '[training]\nmethod = "lora"\n[evaluation]\nenabled = true\n', encoding="utf-8")
    sink = JsonlSink(folder.events)
    sink(PhaseStarted(time=100.0, phase="caching", total=10, description="encoding images"))
    sink(RunFailed(time=101.0, reason="out of memory while caching"))
    sink.close()
    page = Page(write_report(folder.path).read_text(encoding="utf-8"))
    assert "some/model" in page.text and "lora" in page.text
    assert "This run was not scored" not in page.text
    assert "Scoring was on, but the run ended before its first scored round" in page.text
    folder.profile.write_text('model = "some/model"\nevaluation = true\n', encoding="utf-8")  # a hand edit
    assert "This run was not scored" in write_report(folder.path).read_text(encoding="utf-8")


def test_a_run_of_one_step_shows_its_loss_as_a_dot(tmp_path: Path) -> None:
    """A polyline of one point draws nothing: the loss chart of a run that crashed after step 1 was empty."""
    from engine.events import RunStarted, StepEnded

    folder = RunFolder(tmp_path / "one").create()
    sink = JsonlSink(folder.events)
    sink(RunStarted(time=100.0, run_dir=str(folder.path), profile={}, hardware={}, versions={}, total_steps=20))
    sink(StepEnded(time=101.0, step=1, total_steps=20, epoch=0, loss=0.2, smoothed_loss=0.2, lr=1e-4, it_per_s=1.0, eta_s=None))
    sink.close()
    page = Page(write_report(folder.path).read_text(encoding="utf-8"))
    assert page.charts == 1 and page.tags.count("circle") == 2  # loss and smoothed
