"""The terminal's and the report's scored rounds are the best-step rule's: a damaged samples_scored or run_started line
is skipped as the rule skips it (it crashed `dbtui report`, `dbtui attach` and the live printers), and only rounds of
the newest base round's [evaluation] settings are compared (a resume under other ones scores the base again)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image
from rich.console import Console

from dbtui.console import PlainPrinter, RichDashboard
from dbtui.widgets.score_plot import ScoreHistory
from engine.events import Event, RunFinished, RunStarted, SamplesScored, Warning
from engine.runs.folder import RunFolder, RunState
from engine.runs.report import read_run, write_report
from engine.runs.score_words import ScoreTrack
from engine.runs.sinks import read_events

GOOD = {"subject": 0.9, "dino": 0.9, "clip_i": 0.9, "clip_t": 0.3, "class_drift": 0.01}


def started(evaluation: object, resumed_from: int = 0) -> dict:
    return {"event": "run_started", "time": 1.0, "run_dir": "r", "profile": {"evaluation": evaluation}, "hardware": {},
            "versions": {}, "total_steps": 60, "resumed_from_step": resumed_from}


def round_line(step: object, scores: object, prompts: object = ()) -> dict:
    return {"event": "samples_scored", "time": 2.0, "step": step, "scores": scores,
            "prompts": list(prompts) if isinstance(prompts, tuple) else prompts}


# Each damaged line is one an events.jsonl can hold: a hand edit, or another tool's writer.
DAMAGED = [
    started("0.02"),  # "evaluation" no table
    started({"prompt_fidelity_tolerance": "0.02"}),  # a string tolerance
    started(None),
    started({"prompt_fidelity_tolerance": 10**400}),  # whole numbers past a float's range: math.isfinite raised
    round_line(0, {**GOOD, "subject": 0.5}),
    round_line(10, None),  # no scores
    round_line(None, GOOD),  # no step
    round_line(-5, GOOD),
    round_line(20, {**GOOD, "clip_t": "0.3"}, prompts=None),  # a score no number, prompts no list
    round_line(30, {**GOOD, "dino": 10**400}, prompts=[None, {"prompt": "a zwx dog"}]),
    {"event": "run_finished", "time": 3.0, "step": 30, "outputs": {}, "seconds": 1.0},
]


def damaged_run(tmp_path: Path) -> RunFolder:
    folder = RunFolder(tmp_path / "runs" / "damaged").create()
    folder.events.write_text("".join(json.dumps(line) + "\n" for line in DAMAGED), encoding="utf-8")
    folder.write_state(RunState(pid=1, status="finished", step=30, total_steps=60))
    for step in (20, 30):  # evaluation grids: the report names their round's prompts under them
        (folder.path / "evaluation" / f"step-{step:06d}").mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(folder.path / "evaluation" / f"step-{step:06d}" / "grid.png")
    return folder


def test_a_damaged_round_or_start_is_skipped_by_the_report(tmp_path: Path) -> None:
    folder = damaged_run(tmp_path)
    record = read_run(folder.path)
    assert sorted(record.rounds) == [0, 20, 30] and record.rounds[20].scores["clip_t"] is None
    assert record.best is not None and record.best.step == 30 and record.best.tolerance == 0.02
    page = write_report(folder.path).read_text(encoding="utf-8")
    assert "“a zwx dog”" in page


def test_a_damaged_round_or_start_is_skipped_by_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """`dbtui report` and `dbtui attach --plain` exited 3, "bug in dbtui"."""
    from dbtui.cli import main

    folder = damaged_run(tmp_path)
    assert main(["report", str(folder.path)]) == 0
    assert main(["attach", str(folder.path), "--plain"]) == 0
    out = capsys.readouterr().out
    assert "scores at step 30: subject 0.900, CLIP-T 0.300 (start 0.300), drift 0.010" in out
    assert "scores at step None" not in out and "best step: 30 — subject fidelity 0.900" in out


def test_a_damaged_round_or_start_is_skipped_by_the_live_printers(tmp_path: Path) -> None:
    events = list(read_events(damaged_run(tmp_path).events))
    out = io.StringIO()
    printer = PlainPrinter(out=out)
    dashboard = RichDashboard("t", console=Console(file=io.StringIO(), width=300, color_system=None))
    for event in events:
        printer(event)
        dashboard(event)
    said = [line for line in out.getvalue().splitlines() if line.startswith("scores")]
    assert [line.split(":")[0] for line in said] == ["scores at step 0 (base model)", "scores at step 20", "scores at step 30"]
    rendered = io.StringIO()
    Console(file=rendered, width=300, color_system=None).print(dashboard._render())
    assert "best step 30 — subject fidelity 0.900" in rendered.getvalue()


# -- another scale ------------------------------------------------------------------------------------


OLD, NEW = {"prompts": ["a zwx dog"]}, {"prompts": ["a zwx dog", "a dog"]}


def scored(step: int, clip_t: float, settings: dict, subject: float = 0.9) -> SamplesScored:
    return SamplesScored(step=step, scores={"subject": subject, "clip_t": clip_t, "class_drift": 0.01}, settings=settings)


def start(resumed_from: int = 0) -> RunStarted:
    return RunStarted(run_dir="r", profile={"evaluation": {"enabled": True}}, hardware={}, versions={}, total_steps=400,
                      resumed_from_step=resumed_from)


def resumed_under_new_settings(at: int) -> list[Event]:
    """Rounds at 0, 100 and 200, stopped at 200, and resumed from ``at`` under other settings: the base model is scored
    again for them before the resume's checkpoint loads, and said right after its start."""
    return [start(), scored(0, 0.30, OLD, 0.4), scored(100, 0.30, OLD), scored(200, 0.30, OLD),
            RunFinished(step=200, outputs={}, seconds=1.0, status="stopped"),
            Warning(message="the [evaluation] settings differ"), start(at), scored(0, 0.32, NEW, 0.4)]


def test_a_resume_under_other_settings_compares_only_their_rounds() -> None:
    """The old rounds' CLIP-T 0.300 was said to have fallen below the new base's 0.320: every step likely overfit."""
    track = ScoreTrack()
    for event in resumed_under_new_settings(200):
        track.add(event)
    assert sorted(track.rounds) == [0] and track.start == (0, 0.32) and track.best is None
    assert track.said(0) == "step 0 (base model): subject 0.400, CLIP-T 0.320, drift 0.010"
    assert track.said(200) is None  # another scale's round: not said as one of these
    assert track.why_none(ended=False) == (
        "no step qualifies yet: the [evaluation] settings changed at step 200, so the rounds scored before are not "
        "compared; no step has been scored under them yet")
    assert track.why_none(ended=True) == (
        "no step qualifies: the [evaluation] settings changed at step 200, so the rounds scored before are not "
        "compared; the run ended before a step was scored under them")
    track.add(scored(300, 0.31, NEW))
    assert sorted(track.rounds) == [0, 300] and track.best is not None and track.best.step == 300
    assert track.why_none(ended=False) is None


def test_the_step_the_settings_changed_at_is_the_resumes() -> None:
    """A resume from a checkpoint no round scored: not the last old round's step."""
    track = ScoreTrack()
    for event in resumed_under_new_settings(150):
        track.add(event)
    assert "changed at step 150," in (track.why_none(ended=False) or "")


def test_the_dashboard_shows_the_new_scales_scores() -> None:
    dashboard = RichDashboard("t", console=Console(file=io.StringIO(), width=300, color_system=None))
    for event in resumed_under_new_settings(200):
        dashboard(event)
    rendered = io.StringIO()
    Console(file=rendered, width=300, color_system=None).print(dashboard._render())
    shown = rendered.getvalue()
    assert "scores step 0 (base model): subject 0.400, CLIP-T 0.320, drift 0.010" in shown
    assert "(start 0.320)" not in shown and "changed at step 200" in shown


def test_the_score_plot_and_the_rule_agree_on_the_scale() -> None:
    """A round of other settings than the base round's: the rule set it aside, the plot drew it."""
    history = ScoreHistory()
    for event in (start(), scored(0, 0.30, OLD), scored(100, 0.30, OLD), scored(200, 0.30, NEW)):
        history.add(event)
    assert history.series("clip_t")[0] == [0, 100] and history.best is not None and history.best.step == 100


def test_what_a_branch_left_behind_no_longer_says_the_settings_changed() -> None:
    """After a resume from an earlier checkpoint, the step said was the dropped branch's; after a restart from the start
    under the same settings, the settings were still said to have changed."""
    track = ScoreTrack()
    for event in [*resumed_under_new_settings(200), scored(300, 0.31, NEW), RunFinished(step=300, outputs={}, seconds=1.0,
                                                                                          status="stopped"), start(100)]:
        track.add(event)
    assert "changed at step 100," in (track.why_none(ended=False) or "")
    for event in (start(0), scored(0, 0.32, NEW, 0.4)):
        track.add(event)
    assert not track.scored.rescaled and track.scored.changed_at is None
    assert track.why_none(ended=False) == "no step qualifies yet: no step after the base model has been scored yet"


def test_a_base_round_scored_again_under_the_same_new_settings_still_says_they_changed() -> None:
    """A resume under the new settings that scored the base again (its round lost, say) kept the old rounds held and set
    aside, but was taken for one that changed nothing: the reason fell back to 'no step scored yet'."""
    track = ScoreTrack()
    again = (RunFinished(step=200, outputs={}, seconds=1.0, status="stopped"), start(200), scored(0, 0.32, NEW, 0.4))
    for event in (*resumed_under_new_settings(200), *again):
        track.add(event)
    assert track.scored.rescaled and track.scored.changed_at == 200
    assert track.why_none(ended=False) == (
        "no step qualifies yet: the [evaluation] settings changed at step 200, so the rounds scored before are not "
        "compared; no step has been scored under them yet")
    for event in (scored(300, 0.31, NEW), RunFinished(step=300, outputs={}, seconds=1.0, status="stopped"), start(300),
                  scored(0, 0.32, NEW, 0.4)):
        track.add(event)
    assert track.scored.rescaled and track.scored.changed_at == 200  # the change, not this resume
    assert sorted(track.rounds) == [0, 300] and track.best is not None and track.best.step == 300


def test_a_resume_that_drops_every_round_of_the_old_settings_no_longer_says_they_changed() -> None:
    """Only a new base round said whether rounds were set aside: a later resume from an earlier checkpoint, which left
    none of the old settings' rounds, still said the settings changed at its step."""
    track = ScoreTrack()
    for event in (start(), scored(0, 0.30, OLD, 0.4), scored(200, 0.30, OLD),
                  RunFinished(step=200, outputs={}, seconds=1.0, status="stopped"), start(200),
                  scored(0, 0.32, NEW, 0.4), start(100)):
        track.add(event)
    assert sorted(track.scored.held) == [0] and not track.scored.rescaled and track.scored.changed_at is None
    assert track.why_none(ended=False) == "no step qualifies yet: no step after the base model has been scored yet"
