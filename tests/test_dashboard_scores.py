"""The dashboard with [evaluation]'s scores at 80×24: curves under the loss, the best step (so far, while it trains),
and, when the run ends, the export of the best step and the report (a fake engine: no torch)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest
from textual.widgets import Button, Log

from dbtui.app import make_app
from dbtui.screens.training import TrainingScreen
from dbtui.session import Session
from dbtui.widgets.score_plot import ScorePanel, ScorePlot
from engine.events import Event, PhaseProgress, PhaseStarted, RunFailed, RunFinished, RunStarted, SamplesScored
from wizard_fakes import FakeEngine, run_events
from wizard_steps import settle

SIZE = (80, 24)
# (step, subject fidelity, CLIP-T): step 6 has the best subject but its CLIP-T fell 0.10 from the
# base model's (more than the 0.02 allowed), so the best step is 4.
ROUNDS = [(0, 0.40, 0.300), (2, 0.55, 0.296), (4, 0.70, 0.290), (6, 0.80, 0.200)]


def scored(step: int, subject: float, clip_t: float) -> SamplesScored:
    return SamplesScored(time=1.0 + step, step=step, scores={"subject": subject, "dino": subject - 0.05, "clip_i": subject + 0.05,
                                                            "clip_t": clip_t, "class_drift": step / 100})


def scored_run(rounds=ROUNDS, end: Event | None = None) -> list[Event]:
    """The fake run's events with a scored round at the base model and at every second step."""
    events = []
    for event in run_events(6):
        if isinstance(event, RunFinished):
            events += [scored(*r) for r in rounds if r[0] == 6]
            events.append(end or event)
            continue
        events.append(event)
        if isinstance(event, RunStarted):
            events += [scored(*r) for r in rounds if r[0] == 0]
        elif event.kind == "step_ended" and event.step in (2, 4):
            events += [scored(*r) for r in rounds if r[0] == event.step]
    return events


@dataclass
class ScoredEngine(FakeEngine):
    """The fake engine with checkpoints kept at ``kept`` and an instant export."""

    kept: list[int] = field(default_factory=lambda: [2, 4])
    damaged: list[int] = field(default_factory=list)

    def checked_checkpoints(self, folder: Path) -> tuple[list[int], list[int]]:
        return list(self.kept), list(self.damaged)

    def export_checkpoint(self, folder: Path, step: int, emit=None) -> dict[str, str]:
        self.calls.append(("export_checkpoint", str(folder), step))
        emit(PhaseStarted(phase="export", total=2))
        emit(PhaseProgress(phase="export", done=2, total=2))
        return {"diffusers": f"{folder}/exports/step-{step}/diffusers"}

    def write_report(self, folder: Path) -> Path:
        self.calls.append(("write_report", str(folder)))
        return Path(folder) / "report.html"


async def dashboard(engine: FakeEngine, pilot) -> TrainingScreen:
    await pilot.press("d")  # the demo
    await pilot.pause()
    pilot.app.goto(4)
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, TrainingScreen)
    return screen


def log_text(screen: TrainingScreen) -> str:
    """The log's lines as written: a long one is wrapped at the log's width, its continuations indented."""
    return "\n".join(screen.query_one(Log).lines).replace("\n  ", " ")


def unwrapped(text: str) -> str:
    """Without spaces: the log wraps a long path anywhere, and log_text joins its pieces with one."""
    return text.replace(" ", "")


def shown_buttons(screen: TrainingScreen) -> list[str]:
    return [str(b.label) for b in screen.query("#tr-buttons Button") if b.is_on_screen]


async def test_scores_are_drawn_under_the_loss_with_the_best_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    engine = ScoredEngine(events=scored_run())
    app = make_app(engine, Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await dashboard(engine, pilot)
        panel, plot, loss = screen.query_one(ScorePanel), screen.query_one(ScorePlot), screen.query_one("#tr-plot")
        assert panel.display and panel.region.height >= 6 and loss.region.height >= 6  # both fit at 80×24
        assert loss.region.bottom <= panel.region.y  # the scores under the loss, in the same column
        assert set(plot.drawn) == {"subject", "dino", "clip_i", "clip_t", "class_drift"}
        assert plot.drawn["subject"] == ([0, 2, 4, 6], [0.40, 0.55, 0.70, 0.80])
        assert plot.drawn["clip_t"][1] == [0.300, 0.296, 0.290, 0.200]
        assert screen.scores.best is not None and screen.scores.best.step == 4
        lines = [strip.text for strip in app.screen._compositor.render_strips()]  # the terminal's text
        scores = "\n".join(line[:loss.region.width] for line in lines[panel.region.y:panel.region.bottom])
        assert "━subject ━DINO ━CLIP-I ━CLIP-T ━drift" in scores and "best step: 4" in scores  # the run finished
        assert "Scores at step 6: subject 0.800 · CLIP-T 0.200" in log_text(screen)
        assert "Best step so far: 4" in log_text(screen)  # the log's line was written while it trained


def scores_text(app, screen: TrainingScreen) -> str:
    """The score panel's text as the terminal shows it."""
    panel, loss = screen.query_one(ScorePanel), screen.query_one("#tr-plot")
    lines = [strip.text for strip in app.screen._compositor.render_strips()]
    return "\n".join(line[:loss.region.width] for line in lines[panel.region.y:panel.region.bottom])


STOP = RunFinished(time=9.0, step=6, outputs={}, seconds=1.0, status="stopped")
FAILURE = RunFailed(time=9.0, reason="CUDA error", step=6)
RESUME = RunStarted(time=10.0, run_dir="runs/demo", profile={}, hardware={}, versions={}, total_steps=8, resumed_from_step=6)


@pytest.mark.parametrize(("after", "said"), [([STOP], "best step when stopped: 4"), ([FAILURE], "best step before it failed: 4"),
                                             ([STOP, RESUME], "best step so far: 4")])
async def test_the_best_step_is_said_of_how_the_run_ended(after: list[Event], said: str, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A finished run's plot said "best step so far", as if it still trained; a stopped or failed one's best step is
    the best it reached before that, and a resume trains on: "so far" again."""
    monkeypatch.chdir(tmp_path)
    events = scored_run()[:-1] + after  # in place of the run's finish
    engine = ScoredEngine(events=events)
    app = make_app(engine, Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await dashboard(engine, pilot)
        text = scores_text(app, screen)
        assert said in text and ("so far" in said) == ("so far" in text), text


async def test_a_stop_at_an_earlier_step_drops_the_later_rounds_from_the_plot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A resume from step 2 stopped before its first step says only its stop (no start): the plot and the best line
    kept the rounds of the branch it set aside, where `dbtui runs` and the report drop them."""
    monkeypatch.chdir(tmp_path)
    engine = ScoredEngine(events=scored_run(end=RunFinished(step=2, outputs={}, seconds=1.0, status="stopped")))
    app = make_app(engine, Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await dashboard(engine, pilot)
        assert screen.query_one(ScorePlot).drawn["subject"] == ([0, 2], [0.40, 0.55])
        assert screen.scores.best is not None and screen.scores.best.step == 2


async def test_without_scores_the_score_panel_stays_hidden(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    engine = ScoredEngine(events=run_events(6))
    app = make_app(engine, Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await dashboard(engine, pilot)
        assert not screen.query_one(ScorePanel).display
        assert screen.query_one("#tr-plot").region.height == screen.query_one("#tr-top").region.height
        assert shown_buttons(screen) == ["Report (r)", "Detach (d)"]  # nothing to export: no best step
        await pilot.press("e")
        assert not [c for c in engine.calls if c[0] == "export_checkpoint"]


async def test_the_ended_run_exports_its_best_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    engine = ScoredEngine(events=scored_run(), kept=[2, 4])
    app = make_app(engine, Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await dashboard(engine, pilot)
        assert shown_buttons(screen) == ["Export step 4 (best) (e)", "Report (r)", "Detach (d)"]
        # Absolute, as every path the wizard gives: the shell may be opened anywhere later.
        assert unwrapped(f"Best step 4: keep it with `dbtui export {tmp_path}/runs/tiny-demo --step 4`") in unwrapped(log_text(screen))
        await pilot.press("e")
        await pilot.app.workers.wait_for_complete()
        await pilot.pause(0.1)
        assert ("export_checkpoint", "runs/tiny-demo", 4) in engine.calls
        text = log_text(screen)
        assert unwrapped(f"Exported step 4 into {tmp_path}/runs/tiny-demo/exports/step-4/") in unwrapped(text)
        assert "diffusers: runs/tiny-demo/exports/step-4/diffusers" in text
        button = screen.query_one("#tr-export", Button)
        assert button.disabled and str(button.label) == "Step 4 exported"
        await pilot.press("e")  # done: not again
        await pilot.app.workers.wait_for_complete()
        assert len([c for c in engine.calls if c[0] == "export_checkpoint"]) == 1

        await pilot.press("r")
        await pilot.app.workers.wait_for_complete()
        await pilot.pause(0.1)
        assert ("write_report", "runs/tiny-demo") in engine.calls
        assert "Report: runs/tiny-demo/report.html" in log_text(screen)


async def test_an_unkept_best_step_offers_the_nearest_kept_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    stopped = RunFinished(time=9.0, step=6, outputs={}, seconds=8.0, status="stopped")
    engine = ScoredEngine(events=scored_run(end=stopped), kept=[6])
    app = make_app(engine, Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await dashboard(engine, pilot)
        assert "Best step 4: step 4 has no checkpoint" in log_text(screen)
        # Step 6 lost too much CLIP-T: offered, but said not to qualify.
        assert "no kept step qualifies: the nearest kept one, step 6, lost too much prompt fidelity" in log_text(screen)
        assert shown_buttons(screen)[0] == "Export step 6 (nearest to best 4, did not qualify) (e)"
        await pilot.click("#tr-export")
        await pilot.app.workers.wait_for_complete()
        await pilot.pause(0.1)
        assert ("export_checkpoint", "runs/tiny-demo", 6) in engine.calls


async def test_a_finished_runs_last_step_as_best_needs_no_export(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "Alice" / "MyRuns"  # capitals, which e's notice once wrote in lower case
    home.mkdir(parents=True)
    monkeypatch.chdir(home)
    rounds = [(0, 0.40, 0.300), (2, 0.55, 0.296), (4, 0.60, 0.290), (6, 0.80, 0.299)]  # step 6 is the best
    engine = ScoredEngine(events=scored_run(rounds), kept=[4, 6])
    app = make_app(engine, Session(), image_renderer="none")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = await dashboard(engine, pilot)
        assert unwrapped(f"Best step 6: step 6 is the run's last: its model is already in {home}/runs/tiny-demo/outputs/") in \
            unwrapped(log_text(screen))
        assert shown_buttons(screen) == ["Report (r)", "Detach (d)"]
        await pilot.press("e")
        await pilot.pause()
        said = [n.message for n in app._notifications if n.title == "Best step 6"]
        assert said == [f"Step 6 is the run's last: its model is already in {home}/runs/tiny-demo/outputs/."]


async def test_in_dbtui_serve_the_report_opens_in_the_browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    engine = ScoredEngine(events=scored_run())
    app = make_app(engine, Session(), image_renderer="none")
    delivered = []
    async with app.run_test(size=SIZE) as pilot:
        screen = await dashboard(engine, pilot)
        monkeypatch.setattr(type(app), "is_web", property(lambda self: True))
        monkeypatch.setattr(app, "deliver_text", lambda path, **options: delivered.append((str(path), options)))
        await pilot.click("#tr-report")
        await pilot.app.workers.wait_for_complete()
        await pilot.pause(0.1)
        assert delivered == [("runs/tiny-demo/report.html", {"save_filename": "report.html", "open_method": "browser",
                                                              "mime_type": "text/html", "encoding": "utf-8"})]
        assert screen.finished


def test_the_scored_dashboard_at_80x24(snap_compare, monkeypatch: pytest.MonkeyPatch) -> None:
    # A folder of the same name on every machine: the log shows the run's absolute path. The fake engine writes nothing.
    stable = Path("/tmp/dbtui-snapshot-cwd")
    stable.mkdir(exist_ok=True)
    monkeypatch.chdir(stable)
    engine = ScoredEngine(events=scored_run())
    app = make_app(engine, Session(), image_renderer="halfcell")

    async def run_before(pilot) -> None:
        await dashboard(engine, pilot)
        await pilot.pause(0.3)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


async def test_after_an_export_the_bar_shows_the_run_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The export's phases took the bar, and "finished" stood over the last of them: 0%."""
    from textual.widgets import Label, ProgressBar

    monkeypatch.chdir(tmp_path)
    engine = ScoredEngine(events=scored_run(), kept=[2, 4])
    app = make_app(engine, Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await dashboard(engine, pilot)
        bar = screen.query_one("#tr-progress", ProgressBar)
        assert (bar.display, bar.total, bar.progress) == (True, 6, 6)
        await pilot.press("e")
        await pilot.app.workers.wait_for_complete()
        await pilot.pause(0.1)
        assert ("export_checkpoint", "runs/tiny-demo", 4) in engine.calls
        assert str(screen.query_one("#tr-phase", Label).render()) == "finished"
        assert (bar.display, bar.total, bar.progress) == (True, 6, 6)


async def test_quitting_while_the_dashboard_exports_says_the_process_finishes_it(tmp_path: Path,
                                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl+Q during the export (e) closed the app and left the shell silent: the process waited for the export's
    thread, minutes of a terminal seemingly hung, as it said for a conversion."""
    import threading

    monkeypatch.chdir(tmp_path)
    let_go = threading.Event()

    class SlowExport(ScoredEngine):
        def export_checkpoint(self, folder: Path, step: int, emit=None) -> dict[str, str]:
            let_go.wait(10)
            return super().export_checkpoint(folder, step, emit)

    app = make_app(SlowExport(events=scored_run(), kept=[2, 4]), Session(), image_renderer="none")
    try:
        async with app.run_test(size=SIZE) as pilot:
            await dashboard(pilot.app.engine, pilot)
            await pilot.press("e")
            await pilot.pause()
            await pilot.press("ctrl+q")
            await pilot.pause()
            said = "\n".join(str(line) for line in app._exit_renderables)  # printed once the app has closed
    finally:
        let_go.set()
    assert (f"Finishing the export of step 4 into {tmp_path}/runs/tiny-demo/exports/step-4… (Ctrl-C to abandon it"
            in said)


def test_an_abandoned_export_leaves_no_partial_folder_of_its_own(tmp_path: Path) -> None:
    from engine.convert.partials import partial_path

    from dbtui.conversions import Export, abandon

    into = tmp_path / "runs" / "r" / "exports" / "step-4"
    ours = [partial_path(into / "export"), partial_path(into / "diffusers")]  # the work folder, a folder output
    for folder in ours:
        folder.mkdir(parents=True)
    earlier, another_process = into / "diffusers", into / ".diffusers.otherhost.12-34.abcdef12.partial"
    earlier.mkdir()
    another_process.mkdir()
    abandon([Export("step 4", into)])
    assert not any(folder.exists() for folder in ours) and earlier.is_dir() and another_process.is_dir()
