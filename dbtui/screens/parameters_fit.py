"""The Parameters step's fit test as it runs: its progress and result in the status line and beside the meter's
breakdown of the settings it trains. Mixed into ParametersScreen, whose ``action_fit`` starts it."""

from __future__ import annotations

from rich.console import RenderableType
from rich.text import Text
from textual import work
from textual.widgets import Button, Static
from textual.worker import get_current_worker

from dbtui.format import duration
from dbtui.messages import EngineEvent, HardwareFailed, WorkDone, WorkFailed
from dbtui.widgets.indented import hanging, indented, markup_lines, note_line
from dbtui.widgets.vram_line import VramLine
from engine.events import PhaseProgress, PhaseStarted, StepEnded
from engine.events import Warning as RunWarning
from engine.memory.estimate import GIB
from engine.runs.fit_pace import SlowFitHint

FIT_STEPS = 10


class FitTest:
    """The fit test's state and messages, on the screen that holds #par-fit, #par-fit-status, #par-fit-result and the
    VRAM line."""

    _fit_key: str | None = None  # the meter's key (engine/memory/inputs.py) of the settings the last fit test trained
    # Its progress or result: Rich markup, or Text where it holds the engine's words: escaped into the markup, one
    # ending in a backslash showed it doubled.
    _fit_text: str | Text = ""
    _fit_in_fp16 = False  # those settings were estimated in fp16, as this GPU without bf16 trains them
    _fit_launched: str | None = None  # how the fit test's one process differs from a run of several or a sharded one
    _phase_started: PhaseStarted | None = None  # the fit test's set-up phase under way, for its progress
    _fitting = False  # a fit test is running: its trainer cannot be stopped by starting another, so none starts
    _fit_pace: SlowFitHint | None = None  # fed the fit test's events: on a CPU, says once that it will take long
    _fit_hint: str | Text = ""  # what it said, kept under the progress and the result
    _fit_unsaid = ""  # what it said before the hardware probe answered: said once the probe finds no GPU
    _probe_failed = False  # the hardware probe raised: no answer comes for what is held for it

    def _fit_begin(self, resolution: int) -> None:
        self._fit_hint = self._fit_unsaid = ""
        self._fit_pace = SlowFitHint(FIT_STEPS, resolution, "dataset.resolution", estimate_shown=False,
                                     estimate_at="on the VRAM line", set_back=True)

    def _fit_running(self, running: bool) -> None:
        self._fitting = running
        self.query_one("#par-fit", Button).disabled = running
        self.refresh_bindings()

    def _fit_status(self, text: str | Text | None = None) -> None:
        """The fit test's progress and result, in a line that is always in view (the VRAM line under it
        has the estimate), and in the form with the meter's breakdown of the settings it trains."""
        self._fit_text = text if text is not None else self._fit_text
        status = self.query_one("#par-fit-status", Static)
        status.display = True
        status.update(Text.from_markup(self._fit_text) if isinstance(self._fit_text, str) else self._fit_text)
        hint = [self._fit_hint] if self._fit_hint else []
        self.query_one("#par-fit-result", Static).update(markup_lines([self._fit_text, *hint, *self._meter_lines()]))

    def _meter_lines(self) -> list[str | RenderableType]:
        if self._fit_key is None:
            return []
        meter = self.query_one(VramLine)
        estimate = meter.known(self._fit_key)
        if estimate is None and self._fit_key in meter.failures:
            return [Text(f"Memory meter: not available: {meter.failures[self._fit_key]}")]
        if estimate is None and meter.key != self._fit_key:
            return ["Memory meter: the settings changed before their estimate was made"]
        if estimate is None:
            return ["Memory meter: [i]estimating…[/i] (no GPU needed)"]
        here = [note_line("this GPU has no bf16, so it trains these settings in fp16, with fp32 weights and no fused "
                          "step: estimated so")] if self._fit_in_fp16 else []
        return [f"Memory meter (no GPU needed): {estimate.fit_line()}", *here,
                indented(Text(f"{estimate.model}, {estimate.batch} image(s) of {estimate.width}x{estimate.height} per step"), 2),
                *(hanging(line) for line in estimate.breakdown_lines()),
                *(note_line(note) for note in estimate.notes)]

    def on_vram_line_estimated(self, message: VramLine.Estimated) -> None:
        if message.key == self._fit_key:
            self._fit_status()

    def on_vram_line_failed(self, message: VramLine.Failed) -> None:
        if message.key == self._fit_key:
            self._fit_status()

    # Textual cancels the screen's workers when it is removed (the user left it) and every worker when the
    # app quits: the fit test then ends its trainer, which would otherwise train on, holding the GPU.
    @work(thread=True, exclusive=True, exit_on_error=False, group="fit")
    def fit(self, profile, price: float | None) -> None:
        worker = get_current_worker()
        try:
            result = self.engine.fit_test(profile, FIT_STEPS, emit=lambda e: self.post_message(EngineEvent(e)),
                                          price_per_hour=price, stop=lambda: worker.is_cancelled)
            if result is not None:
                self.post_message(WorkDone("fit", result))
        except Exception as error:  # noqa: BLE001 - shown to the user (out of memory is the usual one)
            self.post_message(WorkFailed("Fit test", str(error)))

    def _pace(self, event) -> None:
        """On a CPU (the hardware step's probe found no GPU), once a set-up phase or the steps project past minutes: how
        long, and that a smaller resolution measures sooner. `dbtui fit` said so; the wizard's test sat counting."""
        if self._fit_pace is None:
            return
        meter = self.query_one(VramLine)
        self._fit_pace.estimate_shown = self._fit_key is not None and meter.known(self._fit_key) is not None
        hint = self._fit_pace(event)  # fed on a GPU too, but said only on a CPU, whose pace is not the run's
        if hint:
            self._fit_say(hint)

    def _fit_say(self, hint: str) -> None:
        """Say ``hint`` on a CPU; before the probe has answered (Next, then Ctrl+F at once), when it has. Where the probe
        failed, whether this machine has a GPU is not known: the hint is said as the pace measured it, saying so."""
        report = self.session.hardware
        if report is None and not self._probe_failed:
            self._fit_unsaid = hint  # the pace says it once: it would be lost
        elif report is None or not report.hardware.gpus:
            if report is None:
                hint = f"if this machine has no GPU (the hardware check failed), {hint}"
            self._fit_hint = Text(f"Note: {hint}")
            self.app.notify(f"Fit test: {hint}", title="Slow on this CPU", timeout=30)  # notices are plain text (app.py)

    def on_hardware_failed(self, _: HardwareFailed) -> None:
        self._probe_failed = True
        self._fit_hardware_known()

    def _fit_hardware_known(self) -> None:
        """The probe answered or failed: a note held for it is said while its fit test runs (after, it is of a test
        gone)."""
        unsaid, self._fit_unsaid = self._fit_unsaid, ""
        if unsaid and self._fitting:
            self._fit_say(unsaid)
            self._fit_status()

    def on_engine_event(self, message: EngineEvent) -> None:
        self._pace(message.event)
        if isinstance(message.event, RunWarning):  # the fit test's run warns as any run does (fp16 skipping steps, say)
            self.app.notify(f"Fit test: {message.event.message}", severity="warning", timeout=15)
        if isinstance(message.event, (PhaseStarted, PhaseProgress)):
            self._fit_phase(message.event)
        if isinstance(message.event, StepEnded):
            done = message.event.step
            if done > FIT_STEPS:  # engine/runs/fit.py goes on until a step after one fp16's loss scaler took
                self._fit_status(f"Fit test running: step {done}, until a step after one fp16's loss scaler took")
            else:
                self._fit_status(f"Fit test running: step {done} of {FIT_STEPS} {'█' * done}{'░' * (FIT_STEPS - done)}")

    def _fit_phase(self, event: PhaseStarted | PhaseProgress) -> None:
        """The set-up before the steps, phase by phase with its count: on a CPU, caching a tiny Flux's images at 512 px
        takes minutes, which "loading the model…" alone showed as frozen."""
        if isinstance(event, PhaseStarted):
            self._phase_started = event
        started = self._phase_started
        if started is None or started.phase != event.phase:
            return
        if event.phase == "training":
            self._fit_status(f"Fit test running: the first of {FIT_STEPS} steps…")
            return
        said = f"{event.phase.replace('_', ' ')}: {started.description}" if started.description else event.phase.replace("_", " ")
        if isinstance(event, PhaseStarted) or not event.total:
            self._fit_status(Text(f"Fit test running: {said}…"))
            return
        left = (event.time - started.time) / event.done * (event.total - event.done) if event.done else None
        about = f", about {duration(left)} left" if left else ""
        self._fit_status(Text(f"Fit test running: {said} ({event.done} of {event.total}{about})"))

    def on_work_done(self, message: WorkDone) -> None:
        from engine.runs.fit import LACKS_STATE

        result = message.result
        self._fit_running(False)
        vram = f"{result.peak_vram_mb / 1024:.1f} GB peak VRAM (torch)" if result.peak_vram_mb else "no GPU: VRAM not measured"
        cost = f", about [b]{result.est_cost:.2f}[/b] at that price" if result.est_cost is not None else ""
        skipped = f" Note: {LACKS_STATE}." if result.lacks_optimizer_state else ""
        # One process unsharded measures a run of several or a sharded one only in part: no meter error is made of it.
        launched = f" Note: {self._fit_launched}." if self._fit_launched else ""
        error = "" if self._fit_launched else self._meter_error(result)
        self._fit_status(Text.from_markup(f"Fit test: {vram}{error}, [b]{result.s_per_step:.2f} s/step[/b]; set-up and "
                                          f"{result.total_steps} steps (previews and exports aside) take about "
                                          f"[b]{duration(result.eta_s)}[/b]{cost}.{skipped}") + launched)

    def _meter_error(self, result) -> str:
        """How far the meter was from torch's own peak, where a GPU measured one."""
        estimate = self.query_one(VramLine).known(self._fit_key) if self._fit_key else None
        if estimate is None or not result.peak_vram_allocated_mb:
            return ""
        measured = result.peak_vram_allocated_mb * 2**20
        return (f" ({measured / GIB:.1f} GB allocated; the meter said {estimate.peak_allocated / GIB:.1f} GB, "
                f"{(estimate.peak_allocated - measured) / measured:+.0%})")

    def on_work_failed(self, message: WorkFailed) -> None:
        self._fit_running(False)
        self._fit_status(Text(f"Fit test failed: {message.message}", style="red"))
