"""The dashboard's numbers: step, loss, lr, speed, ETA, memory."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from dbtui.format import duration
from dbtui.messages import EngineEvent
from engine.events import RunStarted, StepEnded


def _mb(value: float | None) -> str:
    return "–" if value is None else (f"{value / 1024:.2f} GB" if value >= 1024 else f"{value:.0f} MB")


class RunStats(Static):
    DEFAULT_CSS = "RunStats { height: auto; padding: 0 1; }"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.step: StepEnded | None = None
        self.status = "starting"
        self.nvml_mb: float | None = None
        self.ended = False  # the run stopped, finished or failed: its last step's ETA is stale
        self.earlier = False  # the step shown is an earlier attempt's: its speed is stale too
        self.trains = ""  # what the run trains (engine/runs/summary.py), from its run_started event

    def on_mount(self) -> None:
        # The screen handles the run's events; this widget only reads its run_started, as they reach the screen.
        self.screen.message_signal.subscribe(self, self._screen_message)
        self.show()

    def _screen_message(self, message: object) -> None:
        if isinstance(message, EngineEvent) and isinstance(message.event, RunStarted):
            from engine.runs.summary import run_summary

            self.trains = run_summary(message.event.profile, message.event.hardware)
            self.show()

    def show(self, step: StepEnded | None = None, status: str | None = None, nvml_mb: float | None = None,
             earlier: bool = False) -> None:
        """``earlier``: ``step`` is an earlier attempt's (the run is resumed): its speed and ETA are not shown."""
        self.ended = self.ended and step is None or earlier  # a step again: a resume goes on
        self.earlier = earlier if step is not None else self.earlier
        self.step = step or self.step
        self.status = status or self.status
        self.nvml_mb = nvml_mb if nvml_mb is not None else self.nvml_mb
        table = Table(show_header=False, box=None, pad_edge=False)
        table.add_column(style="bold", no_wrap=True)
        table.add_column()  # wraps where the pane is narrow (the run line), rather than losing its end
        table.add_row("status", self.status)
        if self.trains:
            table.add_row("run", Text(self.trains))
        s = self.step
        if s is not None:
            table.add_row("step", f"{s.step}/{s.total_steps}  (epoch {s.epoch + 1})")
            table.add_row("loss", f"{s.loss:.4f}  ~{s.smoothed_loss:.4f}")
            table.add_row("lr", f"{s.lr:.2e}")
            table.add_row("speed", "–" if self.earlier else f"{s.it_per_s:.2f} it/s")
            table.add_row("ETA", "–" if self.ended else duration(s.eta_s))
            table.add_row("VRAM", f"{_mb(s.vram_allocated_peak_mb)} peak, {_mb(self.nvml_mb)} now")
            table.add_row("RAM", _mb(s.rss_mb))
        self.update(table)

    def end(self, status: str) -> None:
        """The run is over (``status`` says how): no time is left to show."""
        self.ended = True
        self.show(status=status)
