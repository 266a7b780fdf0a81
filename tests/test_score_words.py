"""[evaluation]'s scores in a headless run's terminal: a line per scored round, the best step (or why no step
qualifies) when `dbtui run`, `resume`, `demo` and `attach` end, in the wizard's and the report's words."""

from __future__ import annotations

import io
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
from rich.console import Console

from dbtui.console import PlainPrinter, RichDashboard
from engine.events import Event, RunFinished, RunStarted, SamplesScored
from engine.runs.folder import RunFolder, RunState
from engine.runs.score_words import ScoreTrack, sentence
from engine.runs.sinks import JsonlSink


def scored(step: int, subject: float | None, clip_t: float | None, drift: float | None = 0.005) -> SamplesScored:
    return SamplesScored(step=step, scores={"subject": subject, "dino": subject, "clip_i": subject, "clip_t": clip_t,
                                            "class_drift": drift})


def started(tolerance: float = 0.02) -> RunStarted:
    return RunStarted(run_dir="r", profile={"evaluation": {"enabled": True, "prompt_fidelity_tolerance": tolerance}},
                      hardware={}, versions={}, total_steps=60)


# Step 60 has the best subject, but its CLIP-T fell 0.06 below the base model's: the best step is 30.
ROUNDS = [started(), scored(0, 0.5, 0.178, None), scored(30, 0.925, 0.173), scored(60, 0.95, 0.118)]


def printed(events: list[Event]) -> list[str]:
    out = io.StringIO()
    printer = PlainPrinter(out=out)
    for event in events:
        printer(event)
    return [line for line in out.getvalue().splitlines() if line.startswith("scores")]


def test_the_plain_log_says_each_scored_round_and_what_the_rule_makes_of_it() -> None:
    """The log said "[scoring] done in 1.6s" and never a score."""
    assert printed(ROUNDS) == [
        "scores at step 0 (base model): subject 0.500, CLIP-T 0.178, drift –",
        "scores at step 30: subject 0.925, CLIP-T 0.173 (start 0.178), drift 0.005 — best step so far",
        "scores at step 60: subject 0.950, CLIP-T 0.118 (start 0.178), drift 0.005 — CLIP-T fell more than 0.02 "
        "below the start: likely overfit",
    ]


def test_a_round_that_is_no_number_says_so_as_a_dash() -> None:
    [line] = printed([started(), scored(10, float("nan"), 0.3, float("inf"))])
    assert line == "scores at step 10: subject –, CLIP-T 0.300, drift –"


def test_the_live_dashboard_shows_the_latest_scores_and_the_best_step() -> None:
    dashboard = RichDashboard("t", console=Console(file=io.StringIO(), width=200, color_system=None))
    for event in ROUNDS:
        dashboard(event)
    rendered = io.StringIO()
    Console(file=rendered, width=200, color_system=None).print(dashboard._render())
    shown = rendered.getvalue()
    assert "scores step 60: subject 0.950, CLIP-T 0.118 (start 0.178), drift 0.005 — CLIP-T fell more" in shown
    assert "best step 30 — subject fidelity 0.925, CLIP-T 0.173 (start 0.178, allowed drop 0.02)" in shown


def test_when_every_step_lost_prompt_fidelity_the_dashboard_says_why_none_qualifies() -> None:
    dashboard = RichDashboard("t", console=Console(file=io.StringIO(), width=300, color_system=None))
    for event in [started(), scored(0, 0.5, 0.3), scored(30, 0.9, 0.2)]:
        dashboard(event)
    rendered = io.StringIO()
    Console(file=rendered, width=300, color_system=None).print(dashboard._render())
    assert "no step qualifies yet: every scored step's CLIP-T fell more than 0.02" in rendered.getvalue()


def test_why_no_step_qualifies() -> None:
    track = ScoreTrack()
    for event in [started(0.05), scored(0, 0.5, 0.3), scored(30, 0.9, 0.2), scored(60, 0.95, 0.1)]:
        track.add(event)
    assert track.why_none(ended=True) == (
        "no step qualifies: every scored step's CLIP-T fell more than 0.05 (evaluation.prompt_fidelity_tolerance) below "
        "the start, 0.300, so each is likely overfit; train with a lower learning rate, or raise "
        "evaluation.prompt_fidelity_tolerance to accept more drift")
    assert track.why_none(ended=False).startswith("no step qualifies yet: ")
    base_only = ScoreTrack()
    base_only.add(scored(0, 0.5, 0.3))
    assert base_only.why_none(ended=False) == "no step qualifies yet: no step after the base model has been scored yet"
    assert "the run ended before" in base_only.why_none(ended=True)
    no_subject = ScoreTrack()
    for step in (0, 10):
        no_subject.add(scored(step, None, None))
    assert no_subject.why_none(ended=True).startswith("no round scored the subject: none of the evaluation prompts")
    assert ScoreTrack().why_none(ended=True) is None  # not scored: nothing to say


def test_a_sentence_keeps_the_case_of_what_follows_its_first_letter() -> None:
    assert sentence("its model is in /home/Alice/Runs/MyRun, CLIP-T 0.3") == "Its model is in /home/Alice/Runs/MyRun, CLIP-T 0.3"
    assert sentence("") == ""


# -- at the end of a run ---------------------------------------------------------------------


def scored_folder(tmp_path: Path, rounds: list[Event], end: RunFinished | None = None) -> RunFolder:
    folder = RunFolder(tmp_path / "runs" / "t").create()
    sink = JsonlSink(folder.events)
    for event in [*rounds, end or RunFinished(step=60, outputs={"diffusers": "outputs/diffusers"}, seconds=1.0)]:
        sink(event)
    sink.close()
    last = end.status if end else "finished"
    folder.write_state(RunState(pid=1, status=last, step=60, total_steps=60))
    return folder


def foreground(folder: RunFolder) -> SimpleNamespace:
    """What start_run returns, for a trainer that has already ended."""
    trainer = subprocess.Popen([sys.executable, "-c", ""])
    trainer.wait()
    return SimpleNamespace(folder=folder, main_machine=True, from_start=False, set_aside=(), process=trainer,
                           events_offset=0, log_offset=0, own_session=False)


def test_a_foreground_run_ends_with_its_best_step(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """`dbtui run` and `dbtui resume` ended on "outputs are in …", never naming the best step."""
    from dbtui.cli.watch import show_started_run

    folder = scored_folder(tmp_path, ROUNDS)
    assert show_started_run(foreground(folder), "t", plain=True, every=10, detach=False) == 0
    out = capsys.readouterr().out
    assert ("best step: 30 — subject fidelity 0.925, CLIP-T 0.173 (start 0.178, allowed drop 0.02); step 30 "
            "has no checkpoint") in out
    assert "so far" not in out.replace("best step so far", "")  # the round's line said it while the run trained


def test_a_stopped_run_says_its_best_step_before_how_to_resume(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from dbtui.cli.watch import show_started_run

    folder = scored_folder(tmp_path, ROUNDS, RunFinished(step=60, outputs={}, seconds=1.0, status="stopped"))
    assert show_started_run(foreground(folder), "t", plain=True, every=10, detach=False) == 0
    out = capsys.readouterr().out
    assert out.index("best step: 30 — ") < out.index("dbtui resume")


def test_attach_on_an_ended_run_says_why_no_step_qualifies(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """`dbtui attach` said nothing of scoring when no step qualified."""
    from dbtui.cli import main

    folder = scored_folder(tmp_path, [started(), scored(0, 0.5, 0.3), scored(30, 0.9, 0.2)])
    assert main(["attach", str(folder.path), "--plain"]) == 0
    out = capsys.readouterr().out
    assert "no step qualifies: every scored step's CLIP-T fell more than 0.02" in out
    assert "lower learning rate" in out and "qualifies yet" not in out


def test_attach_on_a_finished_run_names_its_best_step_not_a_best_so_far(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from dbtui.cli import main

    folder = scored_folder(tmp_path, ROUNDS)
    assert main(["attach", str(folder.path), "--plain"]) == 0
    [best] = [line for line in capsys.readouterr().out.splitlines() if line.startswith("best step")]
    assert best.startswith("best step: 30 — subject fidelity 0.925")


def test_the_demos_closing_words_name_its_best_step(tmp_path: Path) -> None:
    from dbtui.cli.cmd_demo import closing_words
    from engine.builtin import demo_profile_text
    from engine.profile import loads_profile

    folder = scored_folder(tmp_path, ROUNDS)
    said = closing_words(loads_profile(demo_profile_text()), folder, tmp_path / "tiny-demo.toml")
    assert "\nbest step: 30 — subject fidelity 0.925" in said


def test_the_demos_closing_words_name_the_model_it_wrote(tmp_path: Path) -> None:
    """A demo run with --set saving.export='["safetensors"]' (no diffusers folder is written then) was told its model
    was in outputs/diffusers, which is not there."""
    from dbtui.cli.cmd_demo import closing_words
    from engine.builtin import demo_profile_text
    from engine.profile import loads_profile
    from engine.runs.folder import RunFolder

    folder = RunFolder(tmp_path / "runs" / "tiny-demo")
    said = {export: closing_words(loads_profile(demo_profile_text(), [f"saving.export={export}", "name='tiny-demo'"]),
                                  folder, tmp_path / "tiny-demo.toml")
            for export in ('["diffusers", "safetensors"]', '["safetensors"]')}
    assert f"model:   {folder.outputs / 'diffusers'}\n" in said['["diffusers", "safetensors"]']
    assert f"model:   {folder.outputs / 'tiny-demo.safetensors'}\n" in said['["safetensors"]']


def test_a_resumes_rounds_are_said_against_the_rounds_scored_before_it(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """`dbtui resume` said of its first round "— best step so far" and measured CLIP-T from that round, knowing none
    of the rounds the earlier attempt scored: step 40 was named best where step 30, scored before, is."""
    from dbtui.cli.watch import show_started_run

    stopped = RunFinished(step=30, outputs={}, seconds=1.0, status="stopped")
    folder = scored_folder(tmp_path, ROUNDS[:3], stopped)
    trainer = foreground(folder)
    trainer.events_offset = folder.events.stat().st_size  # where the resume's events begin
    sink = JsonlSink(folder.events)
    for event in [replace(started(), resumed_from_step=30), scored(40, 0.9, 0.172), RunFinished(step=60, outputs={}, seconds=1.0)]:
        sink(event)
    sink.close()
    assert show_started_run(trainer, "t", plain=True, every=10, detach=False) == 0
    said = [line for line in capsys.readouterr().out.splitlines() if line.startswith("scores")]
    assert said == ["scores at step 40: subject 0.900, CLIP-T 0.172 (start 0.178), drift 0.005"]


def resumed(step: int, scoring: bool) -> RunStarted:
    return RunStarted(run_dir="r", profile={"evaluation": {"enabled": scoring}}, hardware={}, versions={}, total_steps=60,
                      resumed_from_step=step)


def test_a_resume_that_turned_scoring_off_says_the_later_steps_were_not_scored(tmp_path: Path,
                                                                               capsys: pytest.CaptureFixture) -> None:
    """Resumed at step 30 with evaluation.enabled = false, the run ended on "best step: 30 — …; keep it with …", the same
    words as a run scored to its end: steps 31–60 read as scored and worse. The words now say they were never scored."""
    from dbtui.cli import main

    stop = RunFinished(step=30, outputs={}, seconds=1.0, status="stopped")
    folder = scored_folder(tmp_path, [started(), scored(0, 0.5, 0.178), scored(30, 0.925, 0.173), stop, resumed(30, False)])
    assert main(["attach", str(folder.path), "--plain"]) == 0
    [best] = [line for line in capsys.readouterr().out.splitlines() if line.startswith("best step")]
    assert best.startswith("best step: 30 — subject fidelity 0.925")
    assert best.endswith("; steps after 30 were not scored (the resume from step 30 turned [evaluation] off), so the best "
                         "step is chosen among the steps scored up to it; compare the later previews by eye")


@pytest.mark.parametrize("later, unscored_from", [
    ([], None),  # scored to the end
    ([resumed(40, False)], 30),  # left off at the next resume: still since 30
    ([resumed(20, False)], 20),  # a --from before it: unscored since 20
    ([resumed(40, True)], None),  # turned on again: what it scores from then on is compared
])
def test_the_step_scoring_was_turned_off_at(later: list[Event], unscored_from: int | None) -> None:
    from engine.evaluation.best import best_step

    first = [started(), scored(0, 0.5, 0.178), scored(10, 0.925, 0.173)]
    off = [resumed(30, False)] if later or unscored_from else []
    best = best_step([*first, *off, *later])
    assert best is not None and best.step == 10 and best.unscored_from == unscored_from


def test_a_resume_that_changed_the_evaluation_settings_says_the_earlier_rounds_were_not_compared(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Resumed at step 30 under other evaluation prompts, the run ended on "best step: 60 — …", as if step 60 had beaten
    step 30, which was never compared with it (the rounds before were scored on another scale); the earlier best is
    kept by the rotation but was named nowhere at the end."""
    from dbtui.cli import main

    old, new = {"prompts": ["a zwx dog"]}, {"prompts": ["a zwx dog in the snow"]}
    stop = RunFinished(step=30, outputs={}, seconds=1.0, status="stopped")
    folder = scored_folder(tmp_path, [started(), replace(scored(0, 0.5, 0.178), settings=old),
                                      replace(scored(30, 0.925, 0.173), settings=old), stop, resumed(30, True),
                                      replace(scored(0, 0.5, 0.2), settings=new), replace(scored(60, 0.8, 0.2), settings=new)])
    assert main(["attach", str(folder.path), "--plain"]) == 0
    [best] = [line for line in capsys.readouterr().out.splitlines() if line.startswith("best step")]
    assert best.startswith("best step: 60 — ")
    assert best.endswith("; the rounds scored before the resume from step 30 changed the [evaluation] settings are not "
                         "compared (under those, the best was step 30)")
