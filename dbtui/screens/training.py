"""Step 5: start (or attach to) a run and watch it: loss, scores, speed, memory, samples, warnings;
when it ends, export its best step and write its report."""

from __future__ import annotations

import time
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Log
from textual.worker import get_current_worker

from dbtui import gpu_live
from dbtui.format import launch_wait_words
from dbtui.messages import RUN_START, EngineEvent, ResumeOffered, RunAttached
from dbtui.screens.run_life import (NO_PREVIEWS, AlreadyRunning, LaunchWaiting, NotStarted, TrainerGone, ask,
                                    how_to_resume, leaving_words, start_outcome)
from dbtui.screens.resume import ResumeScreen
from dbtui.screens.run_follow import AttemptStarted, follow_run
from dbtui.screens.run_lines import earlier_end_line, event_line, outputs_line
from dbtui.screens.run_notices import RunNoticesScreen
from dbtui.widgets.end_actions import EndActions
from dbtui.widgets.key_footer import KeyFooter
from dbtui.widgets.loss_plot import LossHistory, LossPlot
from dbtui.widgets.phase_row import PhaseRow
from dbtui.widgets.preview import ImagePreview
from dbtui.widgets.run_controls import RunControls
from dbtui.widgets.run_stats import RunStats
from dbtui.widgets.score_plot import ScoreHistory, ScorePanel, best_line
from dbtui.widgets.wizard_nav import StepIndicator
from dbtui.widgets.wrapping_log import WrappingLog
from engine.events import (CheckpointSaved, PhaseProgress, PhaseStarted, RunFailed, RunFinished,
                           RunStarted, SampleSaved, SamplesScored, StepEnded, Warning)
from engine.profile import ProfileError
from engine.runs.control import makes_previews


class TrainingScreen(RunNoticesScreen):
    STEP = 4
    CSS_PATH = "training.tcss"
    HELP = """\
## Step 5 of 5: Training

The run, live: loss curve, speed, memory, the latest samples and the log.

**s** stops after saving a checkpoint, **c** saves a checkpoint now, **p** renders samples
now, **d** detaches: the run goes on without the wizard. Attach again from the start
screen, or follow it with `tail -f RUN/events.jsonl`.

With `[evaluation]` on, the scores of each preview round are drawn under the loss: subject
fidelity (the mean of DINO and CLIP-I), prompt fidelity (CLIP-T) and class drift, with the best
step (so far, while it trains). When the run ends, **e** exports the best step's checkpoint (or
the nearest kept one) into `RUN/exports/step-N/`, and **r** writes `RUN/report.html`: curves,
previews, the step to keep and why, and the profile (in `dbtui serve` it opens in the browser).

Watch out: samples that copy the training pictures, or a loss that climbs, mean too many
steps or too high a learning rate; stop and keep an earlier checkpoint.
"""
    BINDINGS = [
        Binding("ctrl+n", "next", "Next", show=False, priority=True),  # the last step: no next
        Binding("s", "control('stop')", "Stop & save"),
        Binding("c", "control('save')", "Save now"),
        Binding("p", "control('sample')", "Sample"),
        Binding("d", "detach", "Detach"),
        # Off the footer (it is full at 80 columns): the buttons of an ended run show these keys.
        Binding("e", "export_best", "Export best", show=False),
        Binding("r", "report", "Report", show=False),
    ]

    def __init__(self, session, engine) -> None:
        super().__init__(session, engine)
        self.history = LossHistory()
        self.scores = ScoreHistory()
        self.following_since = 0.0  # events older than this are the run's history, replayed when followed
        self.resumed = False  # the wizard resumed the run followed: its steps before following_since are history
        self.attempt_since = 0.0  # when the trainer followed was started: what came before is an earlier attempt's
        self.folder: Path | None = session.run_folder
        self.finished = False
        self.total_steps = 0  # of the run being followed, from its run_started event
        self.best_logged: int | None = None
        self.stop_asked = False  # Stop pressed while the run was being started
        self.stepped = False  # a step was trained since the trainer started: a stop then saves a checkpoint
        self.previews = True  # the run makes previews or scores (its run_started profile): else Sample now does nothing

    def compose(self) -> ComposeResult:
        yield StepIndicator(self.STEP)
        with Horizontal(id="tr-top"):
            with Vertical(id="tr-plots"):
                yield LossPlot(self.history, id="tr-plot")
                yield ScorePanel(self.scores, id="tr-scores")
            with Vertical(id="tr-side"):
                yield RunStats(id="tr-stats")
                yield ImagePreview(id="tr-samples")
        yield PhaseRow()
        yield WrappingLog(id="tr-log", max_lines=500)
        yield RunControls(self.engine)
        yield KeyFooter()

    def on_mount(self) -> None:
        self.set_interval(1.0, self._poll_nvml)
        if self.folder is not None:
            self._attached(self.folder)
            return
        try:
            profile = self.session.profile()
        except ProfileError as error:
            self.query_one(Log).write_line(str(error))
            self.post_message(NotStarted("the profile has problems (above)", "Go back (Esc) to Parameters and fix them."))
            return
        self.start(profile)

    @work(thread=True, exclusive=True, exit_on_error=False, group=RUN_START)
    def start(self, profile, resume: str | None = None) -> None:
        """Start the run, the screen told how it went; Ctrl+Q meanwhile quits, and the process ends the start (app.py)."""
        message, _ = start_outcome(self.engine, profile, resume,
                                   waiting=lambda held: self.post_message(LaunchWaiting(held)))
        self.post_message(message)

    def on_launch_waiting(self, message: LaunchWaiting) -> None:
        """Another launch into the run's folder holds it: minutes of its image checks would otherwise read as a hang."""
        words = launch_wait_words(message.folder)
        self.query_one(PhaseRow).say("waiting for another launch")
        self.query_one(Log).write_line(words[:1].upper() + words[1:])
        self.notify(words[:1].upper() + words[1:], title="Waiting", timeout=30)

    def on_not_started(self, message: NotStarted) -> None:
        """Nothing runs: the screen says so and why, and offers no control of a run."""
        self.finished = True
        self.query_one(RunStats).show(status="not started")
        self.query_one(PhaseRow).say("not started")
        log = self.query_one(Log)
        log.write_line(f"Not started: {message.reason}")
        log.write_line(message.advice)
        self.query_one(RunControls).hide()
        self.refresh_bindings()
        # The reason whole, as a failed run's: at 80x24 the log's few lines keep only the end of a long one.
        reason = message.reason if message.reason.endswith((".", "!", "?")) else message.reason + "."  # an error's own stop
        self.notify(f"{reason} {message.advice}", title="Not started", severity="error", timeout=60)

    def on_resume_offered(self, message: ResumeOffered) -> None:
        self.stop_asked = False  # nothing was started: the dialog's answer is the user's last word

        def chosen(resume: bool | None) -> None:
            if resume:
                self.resumed = True
                self.start(message.profile, resume="latest")
            else:
                self.post_message(NotStarted("the run's folder already has checkpoints, and you chose not to resume",
                                                  "Go back (Esc) to Parameters and give the run a new name."))

        self.app.push_screen(ResumeScreen(message.detail), chosen)

    def on_already_running(self, message: AlreadyRunning) -> None:
        self.query_one(Log).write_line(f"A trainer is already running in {message.folder}: following it.")
        # Not the one a resume answered here would have started (another terminal's, at work maybe for minutes): its
        # steps count from its own start, as its state says, not from now.
        self.resumed = False
        self._attached(message.folder)

    def on_run_attached(self, message: RunAttached) -> None:
        self.take_down_run_notices()  # the ended run's ("Run crashed … Ctrl+N resumes it") over the one started again
        self._attached(message.folder, message.since)  # launched here: its first events predate the following

    def _attached(self, folder: Path, since: float | None = None) -> None:
        """Follow the run in ``folder``; its events from ``since`` on (None: from now) are news."""
        self.folder = self.session.run_folder = Path(folder)
        self.following_since = time.time() if since is None else since
        self.attempt_since = self.following_since if self.resumed else 0.0  # the follower says the trainer's own
        self.query_one(Log).write_line(f"Following {folder}")
        self.follow(self.folder)
        if self.stop_asked:
            self.stop_asked = False
            self.action_control("stop")

    @work(thread=True, exclusive=True, exit_on_error=False, group="follow")
    def follow(self, folder: Path) -> None:
        worker = get_current_worker()
        follow_run(self.engine, folder, self.history, self.post_message, lambda: worker.is_cancelled,
                   self.following_since if self.resumed else 0.0)

    def on_attempt_started(self, message: AttemptStarted) -> None:
        self.attempt_since = message.since

    def on_trainer_gone(self, message: TrainerGone) -> None:
        resume = how_to_resume(self.session, self.folder)  # from the start when it saved no checkpoint
        self._ended(message.status, "the trainer process ended without a last word; see "
                    f"{self.folder.absolute() / 'logs' / 'trainer.log'}. {resume}")
        self.notify(f"The trainer process is gone. {resume}", title=f"Run {message.status}", severity="error", timeout=15)
        self._offer_export()

    def on_engine_event(self, message: EngineEvent) -> None:
        event, log = message.event, self.query_one(Log)
        stats, row = self.query_one(RunStats), self.query_one(PhaseRow)
        if (line := event_line(event)) is not None:
            log.write_line(line)
        if isinstance(event, StepEnded):
            # Resumed here, the steps before are an earlier attempt's: its speed and ETA are not this trainer's, nor
            # its steps (a stop in the new trainer's set-up saves nothing).
            earlier = self._earlier(event)
            self.stepped = self.stepped or not earlier
            stats.show(event, status=None if earlier else "training", earlier=earlier)
            row.at(event.total_steps, event.step)
            row.say(f"training {event.step}/{event.total_steps}")
        elif isinstance(event, RunStarted):
            self.stepped = False
            self.total_steps = event.total_steps
            self.previews = makes_previews(event.profile)
            self.query_one(ScorePanel).add(event)
            self._live_again()
        elif isinstance(event, SamplesScored):
            self._scored(event)
        elif isinstance(event, PhaseStarted):
            row.start(event.phase.replace("_", " "), event.total)
            stats.show(status=event.phase.replace("_", " "))
        elif isinstance(event, PhaseProgress) and event.phase != "training":
            row.measure(event.total, event.done)
        elif isinstance(event, SampleSaved):
            self.query_one("#tr-samples", ImagePreview).show(event.grid or (event.paths[0] if event.paths else None))
        elif isinstance(event, CheckpointSaved):
            if event.time >= self.following_since:  # the log keeps the history; only news is a notification
                self.notify(f"Checkpoint saved at step {event.step}")
        elif isinstance(event, (RunFinished, RunFailed)) and self._earlier(event):
            # How the earlier attempt ended is history (its line is in the log): the trainer started again sets up
            # until its run_started (minutes of loading a real model), and takes a stop meanwhile.
            if isinstance(event, RunFinished):
                self.query_one(ScorePanel).add(event)  # a stop at a resume's step drops the branch it left
            log.write_line(earlier_end_line(event))
            stats.show(status="resuming")
            row.say("resuming: the trainer is setting up")
        elif isinstance(event, RunFinished):
            self.query_one(ScorePanel).add(event)  # a stop at a resume's step drops the branch it left, as a start does
            detail = outputs_line(event)
            if event.status == "stopped":
                detail += f". {(hint := how_to_resume(self.session, self.folder))}"
                if event.time >= self.following_since:
                    self.notify(hint, title=f"Run stopped at step {event.step}", timeout=30)
            self._ended(event.status, detail, event.step)
            if event.status == "finished":
                self._offer_export(finished_at=event.step)
            else:
                self._offer_export()
        elif isinstance(event, RunFailed):
            self._ended("failed", event.reason + (f" — {event.advice}" if event.advice else ""))
            # Long enough to read whole: at 80x24 the log's five lines keep only the end of a long reason.
            self.notify(event.reason, title="Training failed", severity="error", timeout=60)
            self._offer_export()

    def _earlier(self, event: StepEnded | RunFinished | RunFailed) -> bool:
        """Whether ``event`` is an earlier attempt's, written before the trainer followed was started (resumed here,
        or from another terminal)."""
        return event.time < self.attempt_since

    def _scored(self, event: SamplesScored) -> None:
        self.query_one(ScorePanel).add(event)  # its scores' line is in the log already (event_line)
        best = self.scores.best
        if best is not None and best.step != self.best_logged:
            self.best_logged = best.step
            self.query_one(Log).write_line(f"{best_line(best).capitalize()} ({best.describe()})")

    def _live_again(self) -> None:
        """A resume continues the same run: what ended it before is history, the controls work again."""
        self.finished = False
        self._show_end_actions(None)
        self.refresh_bindings()

    def _show_end_actions(self, ended: str | None) -> None:
        """An ended run's buttons in place of its controls, its best step said of how it ended (None: it trains)."""
        self.query_one(RunControls).live(ended is None)
        self.query_one(EndActions).show(ended is not None, self.folder)
        self.query_one(ScorePanel).end(ended)

    def _ended(self, status: str, detail: str, step: int | None = None) -> None:
        self.finished = True
        self.stepped = False  # a resume's set-up comes next
        if step is not None and self.total_steps:
            self.query_one(PhaseRow).at(self.total_steps, step)
        self.query_one(RunStats).end(status)
        self.query_one(PhaseRow).say(status)
        self.query_one(Log).write_line(f"Run {status}: {detail}")
        self._show_end_actions(status)
        self.refresh_bindings()

    def _offer_export(self, finished_at: int | None = None) -> None:
        """When the run was scored, find how to keep its best step (the kept checkpoints are on disk)."""
        best = self.scores.best
        if best is not None and self.folder is not None:
            self.query_one(EndActions).offer(self.folder, best, finished_at)

    def on_end_actions_said(self, message: EndActions.Said) -> None:
        self.query_one(Log).write_line(message.line)

    def on_end_actions_export_progress(self, message: EndActions.ExportProgress) -> None:
        event = message.event
        if isinstance(event, PhaseStarted):
            self.query_one(PhaseRow).export_started(event.phase.replace('_', ' '), event.total)
        elif isinstance(event, PhaseProgress):
            self.query_one(PhaseRow).measure(event.total, event.done)
        elif isinstance(event, Warning):
            self.query_one(Log).write_line(event_line(event))

    def on_end_actions_export_ended(self, message: EndActions.ExportEnded) -> None:
        self.query_one(PhaseRow).export_ended(self.query_one(RunStats).status)

    def action_export_best(self) -> None:
        self.query_one(EndActions).export_best()

    def action_report(self) -> None:
        self.query_one(EndActions).report()

    def _poll_nvml(self) -> None:
        used = gpu_live.used_vram_mb(gpu_live.trainer_cuda_env(self.folder))
        if used is not None:
            self.query_one(RunStats).show(nvml_mb=used)

    def _starting(self) -> bool:
        """Train a moment ago: the trainer is being started, and the screen must stay to learn its folder."""
        return self.folder is None and not self.finished

    def action_control(self, what: str) -> None:
        if self._starting():
            if what == "stop":
                self.stop_asked = True  # sent once the run is there (_attached): it would otherwise train on
                self.query_one(Log).write_line("Stop requested: it is sent as soon as the run has started…")
            else:
                self.notify("The run is starting: ask again in a moment.", severity="warning")
            return
        if self.folder is None or self.finished:
            self.notify("No run is going.", severity="warning")
            return
        if what == "sample" and not self.previews:  # the trainer would take the request and render nothing
            self.notify(NO_PREVIEWS, severity="warning")
            return
        self.query_one(Log).write_line(ask(self.engine, self.folder, what, self.stepped))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """A run that has ended (or never started) takes no controls: their keys leave the footer (a resume's
        RunStarted brings them back, ``_live_again``)."""
        return not (action == "control" and self.finished)

    def action_detach(self) -> None:
        if self.folder is None:  # starting: the start's answer must reach this screen; none: nothing to leave
            self.notify("The run is starting…; a moment." if self._starting() else
                        "No run is going, so there is nothing to detach from: Esc goes back to Parameters, Ctrl+Q quits.")
            return
        self.app.exit(message=leaving_words(self.folder, self.query_one(RunStats).status if self.finished else None))

    def action_next(self) -> None:
        self.notify("This is the last step. d detaches, Ctrl+Q quits.")

    def action_back(self, step: int | None = None) -> None:
        """Back to the parameters: a run that has ended is let go, so that Train starts the run the form describes
        (a live one is still followed when the user comes back)."""
        if self._starting():  # as detach: the start worker would be cancelled while its thread starts the trainer
            self.notify("The run is starting…; a moment.", severity="warning")
            return
        if self.finished:
            self.session.run_folder = None
        super().action_back(step)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        what = (event.button.id or "").removeprefix("tr-")
        if what == "detach":
            self.action_detach()
        elif what in ("stop", "save", "sample"):
            self.action_control(what)

