"""What the dashboard says of a run that is over, or never began: no stale ETA, one full stop."""

from __future__ import annotations

from pathlib import Path

from dbtui.app import make_app
from dbtui.console import PlainPrinter
from dbtui.screens.training import TrainingScreen
from dbtui.session import Session
from dbtui.widgets.loss_plot import LossPlot
from engine.events import RunFinished, RunStarted
from wizard_fakes import FakeEngine, run_events
from wizard_steps import settle, until

SIZE = (80, 24)


def _terminal(app) -> list[str]:
    return [strip.text for strip in app.screen._compositor.render_strips()]


async def _dashboard(app, pilot, session: Session) -> TrainingScreen:
    screen = TrainingScreen(session, app.engine)
    app.push_screen(screen)
    await settle(pilot, 0.2)
    return screen


async def test_a_stopped_run_shows_no_time_left(tmp_path: Path) -> None:
    """Stopped at step 3 of 6, the dashboard went on saying "ETA 2s"."""
    steps = [e for e in run_events() if e.kind not in ("run_finished",) and getattr(e, "step", 0) <= 3]
    engine = FakeEngine(events=[*steps, RunFinished(time=9.0, step=3, outputs={}, seconds=3.0, status="stopped")])
    session = Session()
    session.run_folder = tmp_path / "runs" / "x"
    app = make_app(engine, session, image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await _dashboard(app, pilot, session)
        assert screen.query_one("#tr-stats").status == "stopped"
        [eta] = [line.partition(" ETA ")[2].split()[0] for line in _terminal(app) if " ETA " in line]
        assert eta == "–"


async def test_a_run_that_did_not_start_is_said_with_one_full_stop(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    engine = FakeEngine()

    def refuse(profile, resume=None, waiting=None):
        raise OSError("Cannot write runs/tiny-demo: the disk is full.")

    engine.start_run = refuse
    session = Session.for_demo()
    app = make_app(engine, session, image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await _dashboard(app, pilot, session)
        [said] = [n.message for n in app._notifications if n.title == "Not started"]
        assert said.startswith("Cannot write runs/tiny-demo: the disk is full. Go back") and ".." not in said


async def test_the_loss_plot_of_a_short_run_marks_whole_steps(tmp_path: Path) -> None:
    """Three steps were marked 1.00 1.50 2.00 2.50 3.00."""
    engine = FakeEngine(events=run_events(3))
    session = Session()
    session.run_folder = tmp_path / "runs" / "x"
    app = make_app(engine, session, image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await _dashboard(app, pilot, session)
        plot = screen.query_one(LossPlot)
        await until(pilot, lambda: plot._drawn == len(plot.history))  # it redraws on a timer, late on a loaded machine
        await pilot.pause()
        lines = _terminal(app)
        [axis] = [index for index, line in enumerate(lines) if "└┬" in line]
        assert lines[axis + 1].partition("╰")[0].split() == ["1", "2", "3"]


FLUX_NF4 = {"model": {"pretrained": "builtin:tiny-flux", "quantize": "nf4"}, "training": {"method": "lora", "lora": {"rank": 16}},
            "precision": {"mixed_precision": "bf16"}}


def flux_started(hardware: dict) -> RunStarted:
    return RunStarted(time=1.0, run_dir="runs/flux", profile=FLUX_NF4, hardware=hardware, versions={}, total_steps=6)


async def test_the_dashboard_says_what_the_run_trains(tmp_path: Path) -> None:
    """Neither the dashboard nor the plain output named the family, the method or the base weights."""
    engine = FakeEngine(events=[flux_started({"gpus": []}), *run_events()[1:]])
    session = Session()
    session.run_folder = tmp_path / "runs" / "x"
    app = make_app(engine, session, image_renderer="none")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _dashboard(app, pilot, session)
        assert screen.query_one("#tr-stats").trains == "Flux.1 LoRA r16 · NF4 base · fp32 (CPU)"
        assert any(" run     Flux.1 LoRA r16" in line for line in _terminal(app))  # a row, wrapped where narrow


def test_the_plain_output_says_what_the_run_trains_and_in_which_maths(capsys) -> None:
    printer = PlainPrinter()
    printer(flux_started({"gpus": []}))
    printer(flux_started({"gpus": [{"name": "Tesla T4", "bf16": False}]}))  # bf16 falls back to fp16 there
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["Flux.1 LoRA r16 · NF4 base · fp32 (CPU)", "training 6 steps on 1 process(es)",
                     "Flux.1 LoRA r16 · NF4 base · fp16 (Tesla T4)", "training 6 steps on 1 process(es)"]


def test_the_run_line_names_an_sd_model_as_the_model_step_does(tiny_sd2v: Path) -> None:
    """The dashboard's run line said "Stable Diffusion 1.x/2.x" of a model the Model step called "Stable Diffusion 1.x",
    and left out the ", v-prediction" the Model step says of a v-prediction model."""
    from engine.model_info import describe_model
    from engine.runs.summary import run_summary

    for source, words in [("builtin:tiny-sd1", "Stable Diffusion 1.x"), ("builtin:sd15-random", "Stable Diffusion 1.x"),
                          ("builtin:tiny-sd2v", "Stable Diffusion 2.x, v-prediction"),
                          (str(tiny_sd2v), "Stable Diffusion 2.x, v-prediction")]:
        assert f" {words}" in describe_model(source).family
        assert run_summary({"model": {"pretrained": source}}, {"gpus": []}) == f"{words} full fine-tune · fp32 (CPU)"
    # Neither its files (not downloaded) nor its name say the version: the family's own label, not a guess of 1.x.
    # A built-in this version does not know (a run made by another version) says no version either.
    for unsaid in ("someone/my-model", "builtin:tiny-sd9"):
        line = run_summary({"model": {"pretrained": unsaid}}, {"gpus": []})
        assert line == "Stable Diffusion 1.x/2.x full fine-tune · fp32 (CPU)", unsaid
