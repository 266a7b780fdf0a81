"""Events in a terminal: one phase display for every command, lines that name their phase and
carry no Rich source location, and plain lines when the output is not a terminal."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from dbtui.console import PhaseDisplay, PlainPrinter, RichDashboard
from engine.events import CheckpointSaved, PhaseFinished, PhaseProgress, PhaseStarted, StepEnded, Warning


def _console(out: io.StringIO, terminal: bool) -> Console:
    return Console(file=out, width=100, force_terminal=terminal, color_system=None)


def test_a_finished_phase_prints_its_name_and_nothing_else() -> None:
    out = io.StringIO()
    dashboard = RichDashboard("demo", console=_console(out, terminal=False))
    dashboard(PhaseStarted(phase="class_images", total=8))
    dashboard(PhaseFinished(phase="class_images", seconds=64.6))
    dashboard(Warning(message="a [bracketed] note", advice="keep [it]"))
    assert out.getvalue() == "[class_images] done in 64.6s\n"
    rendered = io.StringIO()
    Console(file=rendered, width=120, color_system=None).print(dashboard._render())
    assert "a [bracketed] note — keep [it]" in rendered.getvalue()


def test_a_warning_row_of_the_dashboard_says_warning_once() -> None:
    """At 80 columns `dbtui attach` showed 'warning warning: mixed_precision = "fp16" needs a CUDA GPU…': the row's
    label and the plain line's prefix both."""
    dashboard = RichDashboard("demo", console=_console(io.StringIO(), terminal=False))
    dashboard(Warning(message='mixed_precision = "fp16" needs a CUDA GPU', advice="set it to no"))
    rendered = io.StringIO()
    Console(file=rendered, width=80, color_system=None).print(dashboard._render())
    assert rendered.getvalue().count("warning") == 1 and 'warning mixed_precision = "fp16" needs' in rendered.getvalue()


def test_checkpoints_saved_often_never_push_a_warning_out_of_view_and_a_repeated_warning_shows_once() -> None:
    dashboard = RichDashboard("demo", console=_console(io.StringIO(), terminal=False))
    dashboard(Warning(message="fp16's loss scaler skipped the last 20 optimizer steps", advice="train in bf16"))
    dashboard(Warning(message="the learning rate is high", advice="lower it"))
    dashboard(Warning(message="fp16's loss scaler skipped the last 20 optimizer steps", advice="train in bf16"))
    for step in range(100, 1100, 100):
        dashboard(CheckpointSaved(step=step, path=f"checkpoints/step-{step:06d}"))
    rendered = io.StringIO()
    Console(file=rendered, width=160, color_system=None).print(dashboard._render())
    shown = rendered.getvalue()
    assert shown.count("loss scaler skipped") == 1 and "the learning rate is high" in shown
    assert "step-001000" in shown and "step-000100" not in shown  # the latest checkpoints only


def test_the_dashboard_draws_a_phase_under_way_as_a_bar() -> None:
    dashboard = RichDashboard("demo", console=_console(io.StringIO(), terminal=False))
    dashboard(PhaseStarted(phase="caching", total=8, description="encoding images with the VAE"))
    dashboard(PhaseProgress(phase="caching", done=3, total=8))
    rendered = io.StringIO()
    Console(file=rendered, width=140, color_system=None).print(dashboard._render())
    assert "[caching] encoding images with the VAE" in rendered.getvalue() and "3/8" in rendered.getvalue()
    dashboard(PhaseFinished(phase="caching", seconds=1.0))
    assert dashboard.phases.renderable() is None


def test_the_steps_are_drawn_once_by_their_own_bar_not_by_a_training_phase_bar_stuck_at_0() -> None:
    out = io.StringIO()
    dashboard = RichDashboard("demo", console=_console(out, terminal=False))
    dashboard(PhaseStarted(phase="training", total=2000, description="2000 steps"))
    dashboard(StepEnded(step=744, total_steps=2000, epoch=0, loss=0.1, smoothed_loss=0.1, lr=1e-5, it_per_s=3.0, eta_s=400.0))
    rendered = io.StringIO()
    Console(file=rendered, width=140, color_system=None).print(dashboard._render())
    assert "744/2000" in rendered.getvalue() and "0/2000" not in rendered.getvalue()
    dashboard(PhaseFinished(phase="training", seconds=600.0))
    assert "[training] done in 600.0s" in out.getvalue()


def test_plain_lines_give_start_each_tenth_and_end() -> None:
    out = io.StringIO()
    display = PhaseDisplay(plain=True, out=out)
    display(PhaseStarted(phase="dataset_check", total=40, description="checking 40 images"))
    for done in range(1, 41):
        display(PhaseProgress(phase="dataset_check", done=done, total=40))
    display(PhaseFinished(phase="dataset_check", seconds=2.0))
    lines = out.getvalue().splitlines()
    assert lines[0] == "[dataset_check] started checking 40 images"
    assert lines[1:-1] == [f"[dataset_check] {4 * tenth}/40" for tenth in range(1, 11)]
    assert lines[-1] == "[dataset_check] done in 2.0s"


def test_the_plain_printer_shows_phases_as_the_commands_do() -> None:
    events = [PhaseStarted(phase="export", total=2, description="safetensors"), PhaseProgress(phase="export", done=1, total=2),
              PhaseProgress(phase="export", done=2, total=2), PhaseFinished(phase="export", seconds=0.5)]
    printed, shown = io.StringIO(), io.StringIO()
    printer, display = PlainPrinter(out=printed), PhaseDisplay(plain=True, out=shown)
    for event in events:
        printer(event)
        display(event)
    printer(StepEnded(step=1, total_steps=2, epoch=0, loss=0.1, smoothed_loss=0.1, lr=1e-4, it_per_s=1.0, eta_s=1.0))
    assert printed.getvalue().startswith(shown.getvalue())
    assert shown.getvalue().count("\n") == 4


def test_on_a_terminal_bars_are_drawn_and_a_finished_phase_leaves_one_line() -> None:
    out = io.StringIO()
    with PhaseDisplay(plain=False, console=_console(out, terminal=True)) as display:
        display(PhaseStarted(phase="convert", total=4, description="writing [unet] weights"))
        display(PhaseProgress(phase="convert", done=2, total=4))
        bars = io.StringIO()
        _console(bars, terminal=False).print(display.renderable())
        assert "[convert] writing [unet] weights" in bars.getvalue() and "2/4" in bars.getvalue()
        display(PhaseFinished(phase="convert", seconds=1.5))
        display(Warning(message="fp16 weights imported as fp32"))  # stderr: shown above the bars while they run
    text = out.getvalue()
    assert "[convert] done in 1.5s" in text and "warning: fp16 weights imported as fp32" in text
    assert "console.py" not in text  # printed, never logged with a source location


def test_plain_warnings_go_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    out = io.StringIO()
    PhaseDisplay(plain=True, out=out)(Warning(message="fp16 weights imported as fp32", advice="nothing to do"))
    assert capsys.readouterr().err == "warning: fp16 weights imported as fp32 — nothing to do\n"
    assert out.getvalue() == ""


def test_a_file_name_in_a_failure_or_warning_never_sends_control_characters_to_the_terminal() -> None:
    from dbtui.console import describe
    from engine.events import RunFailed, Warning

    failed = describe(RunFailed(reason="caption file '\x07bell.txt' is missing", advice="write \x1b[2J it"))
    warned = describe(Warning(message="'\x07bell.png' is odd", advice="rename \x1b[31m it"))
    assert "\x07" not in failed + warned and "\x1b" not in failed + warned
    assert "'\\x07bell.txt' is missing" in failed and "rename \\x1b[31m it" in warned


def test_plain_progress_lines_of_a_long_phase_say_the_time_left() -> None:
    """`--plain` (and nohup's log) gave 40/400 class images with no idea of the hours left, where the bars show it."""
    out = io.StringIO()
    display = PhaseDisplay(plain=True, out=out)
    display(PhaseStarted(phase="class_images", total=400, description="generating 400 class images", time=0.0))
    for done in range(1, 401):
        display(PhaseProgress(phase="class_images", done=done, total=400, time=3.0 * done))  # 3 s an image
    display(PhaseFinished(phase="class_images", seconds=1200.0, time=1200.0))
    lines = out.getvalue().splitlines()
    assert lines[1] == "[class_images] 40/400, eta 18m00s" and lines[5] == "[class_images] 200/400, eta 10m00s", lines
    assert lines[-2] == "[class_images] 400/400" and lines[-1] == "[class_images] done in 1200.0s"


def test_an_attach_that_replays_a_phase_under_way_says_its_time_left_at_the_phase_s_own_pace() -> None:
    """`dbtui attach --plain` replays the run's events at once: the replayed lines said "eta 0s" where the replay
    took a second, and a phase begun before the attach was paced from the attach, its earlier items counted as done
    in no time ("200/400, eta 1m40s" for 10 minutes left). Its events' own times say its pace."""
    import time

    out = io.StringIO()
    display = PhaseDisplay(plain=True, out=out)
    began = time.time() - 600  # 3 s an image for 10 minutes, replayed now
    display(PhaseStarted(phase="class_images", total=400, time=began))
    for done in range(1, 201):
        display(PhaseProgress(phase="class_images", done=done, total=400, time=began + 3.0 * done))
    time.sleep(1.1)  # a replay long enough to have paced itself
    display(PhaseProgress(phase="class_images", done=240, total=400, time=began + 720.0))
    lines = out.getvalue().splitlines()
    assert lines[2] == "[class_images] 80/400, eta 16m00s" and lines[-1] == "[class_images] 240/400, eta 8m00s", lines


def test_a_phase_first_seen_under_way_is_paced_from_there() -> None:
    """Progress of a phase whose start was not seen (followed from the middle of the log) counted its earlier items
    as done at the first line seen."""
    out = io.StringIO()
    display = PhaseDisplay(plain=True, out=out)
    display(PhaseProgress(phase="caching", done=500, total=1000, time=100.0))
    display(PhaseProgress(phase="caching", done=600, total=1000, time=150.0))  # 2 images a second
    assert out.getvalue().splitlines() == ["[caching] 500/1000", "[caching] 600/1000, eta 3m20s"]


def test_a_phase_started_again_before_it_finished_prints_its_progress_from_the_start() -> None:
    """`dbtui attach --plain` of a run resumed after a crash in its caching pass replays the pass twice: the second
    printed nothing until it passed the tenth the crashed one had reached."""
    out = io.StringIO()
    display = PhaseDisplay(plain=True, out=out)
    for attempt in range(2):
        display(PhaseStarted(phase="caching", total=10, time=0.0))
        for done in range(1, 6 + 4 * attempt):
            display(PhaseProgress(phase="caching", done=done, total=10, time=0.0))
    lines = out.getvalue().splitlines()
    assert lines[lines.index("[caching] started", 1):] == ["[caching] started"] + [f"[caching] {done}/10"
                                                                                   for done in range(1, 10)], lines


def test_the_time_left_follows_the_recent_pace_not_items_that_went_fast_before() -> None:
    """A caching pass whose first half was cached by an earlier run (done in half a second) said 3m20s left at 60 %
    where 20 minutes remained: the whole phase's pace counted the cached items."""
    out = io.StringIO()
    display = PhaseDisplay(plain=True, out=out)
    display(PhaseStarted(phase="caching", total=1000, time=0.0))
    for done in range(1, 501):
        display(PhaseProgress(phase="caching", done=done, total=1000, time=done / 1000))
    for done in range(501, 701):
        display(PhaseProgress(phase="caching", done=done, total=1000, time=0.5 + 3.0 * (done - 500)))
    lines = out.getvalue().splitlines()
    assert lines[5] == "[caching] 500/1000" and lines[6] == "[caching] 600/1000, eta 20m00s", lines
    assert lines[7] == "[caching] 700/1000, eta 15m00s", lines


def test_a_step_with_an_allocated_peak_and_no_reserved_one_is_drawn() -> None:
    """Both peaks may be null in events.jsonl's public format; a line of another writer's that gives only the allocated
    one crashed the dashboard of `dbtui attach`."""
    dashboard = RichDashboard("demo", console=_console(io.StringIO(), terminal=False))
    dashboard(StepEnded(step=1, total_steps=10, epoch=0, loss=0.1, smoothed_loss=0.1, lr=1e-4, it_per_s=1.0, eta_s=9.0,
                        vram_allocated_peak_mb=1000.0, vram_reserved_peak_mb=None, rss_mb=2000.0))
    rendered = io.StringIO()
    Console(file=rendered, width=160, color_system=None).print(dashboard._render())
    assert "VRAM peak 1000 MB   RAM 2000 MB" in rendered.getvalue()


def test_the_dashboard_draws_the_last_event_of_a_burst_while_no_other_comes() -> None:
    """`dbtui attach` replays a run's history at once, and a run's last step, its training's end and its export's start
    come within a moment: the panel, redrawn for an event at most 4 times a second, kept showing step 1 of 10 and no
    export bar for as long as the export took, since no event came to redraw it."""
    dashboard = RichDashboard("demo", console=_console(io.StringIO(), terminal=True))
    for step in range(1, 11):
        dashboard(StepEnded(step=step, total_steps=10, epoch=0, loss=0.1, smoothed_loss=0.1, lr=1e-5, it_per_s=3.0,
                            eta_s=1.0))
    dashboard(PhaseFinished(phase="training", seconds=3.0))
    dashboard(PhaseStarted(phase="export", total=None, description="diffusers"))
    rendered = io.StringIO()
    Console(file=rendered, width=140, color_system=None).print(dashboard.live.renderable)  # what its next refresh draws
    assert "10/10" in rendered.getvalue() and "[export] diffusers" in rendered.getvalue()


def test_plain_run_lines_say_a_failure_and_warnings_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    """`dbtui run P --plain 2>err.log` kept "stopping:" there but not why the run failed: "failed: … advice: …" and
    "warning:" went to stdout with the progress."""
    from engine.events import RunFailed

    out = io.StringIO()
    printer = PlainPrinter(out=out)
    printer(StepEnded(step=1, total_steps=2, epoch=0, loss=0.1, smoothed_loss=0.1, lr=1e-4, it_per_s=1.0, eta_s=1.0))
    printer(Warning(message="fp16 weights imported as fp32", advice="nothing to do"))
    printer(RunFailed(reason="the loss became nan at step 2", advice="lower optimizer.learning_rate", step=2))
    err = capsys.readouterr().err
    assert err == ("warning: fp16 weights imported as fp32 — nothing to do\n"
                   "failed: the loss became nan at step 2\n  advice: lower optimizer.learning_rate\n")
    assert out.getvalue().startswith("step 1/2") and "failed" not in out.getvalue() and "warning" not in out.getvalue()


def test_the_dashboard_says_a_failure_on_stderr_and_draws_itself_on_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    """On a terminal `dbtui run P 2>err.log` left err.log without why the run failed: the dashboard's note of it went
    to stdout, where --plain's goes to stderr."""
    from engine.events import RunFailed

    out = io.StringIO()
    with RichDashboard("demo", console=_console(out, terminal=True)) as dashboard:
        dashboard(StepEnded(step=1, total_steps=2, epoch=0, loss=0.1, smoothed_loss=0.1, lr=1e-4, it_per_s=1.0,
                            eta_s=1.0))
        dashboard(RunFailed(reason="the loss became nan at step 2", advice="lower optimizer.learning_rate", step=2))
    assert capsys.readouterr().err == "failed: the loss became nan at step 2\n  advice: lower optimizer.learning_rate\n"
    drawn = out.getvalue()
    assert "1/2" in drawn and "failed at step 2 (the reason follows on stderr)" in drawn
    assert "the loss became nan" not in drawn and "advice" not in drawn


def test_attaching_to_a_failed_run_resumed_since_says_no_earlier_failure_as_its_end(
        capsys: pytest.CaptureFixture[str]) -> None:
    """`dbtui attach RUN` of a run that failed at step 2, was resumed and finished printed the earlier attempt's
    failure on stderr after the panel that said finished: the failure read as the run's last word."""
    from engine.events import RunFailed, RunFinished, RunStarted

    out = io.StringIO()
    with RichDashboard("demo", console=_console(out, terminal=True)) as dashboard:
        dashboard(StepEnded(step=2, total_steps=4, epoch=0, loss=0.1, smoothed_loss=0.1, lr=1e-4, it_per_s=1.0,
                            eta_s=1.0))
        dashboard(RunFailed(reason="CUDA out of memory", advice="lower the batch size", step=2))
        dashboard(RunStarted(run_dir="runs/x", profile={}, hardware={}, versions={}, total_steps=4,
                             resumed_from_step=2))
        drawn_resuming = io.StringIO()
        Console(file=drawn_resuming, width=140, color_system=None).print(dashboard._render())
        dashboard(RunFinished(step=4, outputs={}, seconds=3.0))
    assert capsys.readouterr().err == ""
    # The earlier failure stays said in the panel, as history: no reason is promised on stderr.
    assert "earlier attempt failed at step 2" in drawn_resuming.getvalue(), drawn_resuming.getvalue()
    assert "follows on stderr" not in drawn_resuming.getvalue()
