"""The dashboard's numbers: step, loss, lr, speed, ETA, memory."""

from __future__ import annotations

from rich.table import Table
from textual.widgets import Static

from dbtui.format import duration
from engine.events import StepEnded


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

    def on_mount(self) -> None:
        self.show()

    def show(self, step: StepEnded | None = None, status: str | None = None, nvml_mb: float | None = None) -> None:
        self.ended = self.ended and step is None  # a step again: a resume goes on
        self.step = step or self.step
        self.status = status or self.status
        self.nvml_mb = nvml_mb if nvml_mb is not None else self.nvml_mb
        table = Table(show_header=False, box=None, pad_edge=False)
        table.add_column(style="bold", no_wrap=True)
        table.add_column(no_wrap=True)
        table.add_row("status", self.status)
        s = self.step
        if s is not None:
            table.add_row("step", f"{s.step}/{s.total_steps}  (epoch {s.epoch})")
            table.add_row("loss", f"{s.loss:.4f}  ~{s.smoothed_loss:.4f}")
            table.add_row("lr", f"{s.lr:.2e}")
            table.add_row("speed", f"{s.it_per_s:.2f} it/s")
            table.add_row("ETA", "–" if self.ended else duration(s.eta_s))
            table.add_row("VRAM", f"{_mb(s.vram_allocated_peak_mb)} peak, {_mb(self.nvml_mb)} now")
            table.add_row("RAM", _mb(s.rss_mb))
        self.update(table)

    def end(self, status: str) -> None:
        """The run is over (``status`` says how): no time is left to show."""
        self.ended = True
        self.show(status=status)
