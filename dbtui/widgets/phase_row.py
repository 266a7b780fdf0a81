"""The Training step's phase row: what the run (or an export of it) is doing, and a bar of how far it has got."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Label, ProgressBar


class PhaseRow(Horizontal):
    """The phase's name and its bar (hidden until a phase says how long it is); training.tcss lays them out."""

    def __init__(self) -> None:
        super().__init__(id="tr-phase-row")
        self.bar_before: tuple[bool, float | None, float] | None = None  # the run's bar, while an export shows its own

    def compose(self) -> ComposeResult:
        yield Label("starting", id="tr-phase")
        bar = ProgressBar(id="tr-progress", show_eta=False)
        bar.display = False
        yield bar

    def say(self, phase: str) -> None:
        self.query_one("#tr-phase", Label).update(phase)

    def measure(self, total: float | None, done: float) -> None:
        self.query_one("#tr-progress", ProgressBar).update(total=total, progress=done)

    def start(self, phase: str, total: float | None) -> None:
        """A phase begins: its bar shows where it says how long it is."""
        self.say(phase)
        self.query_one("#tr-progress", ProgressBar).display = total is not None
        self.measure(total, 0)

    def at(self, total: float, done: float) -> None:
        """A step trained, or the run ended at one: the bar shows how far the training got."""
        self.query_one("#tr-progress", ProgressBar).display = True
        self.measure(total, done)

    def export_started(self, phase: str, total: float | None) -> None:
        bar = self.query_one("#tr-progress", ProgressBar)
        self.bar_before = self.bar_before or (bar.display, bar.total, bar.progress)
        self.start(f"export: {phase}", total)

    def export_ended(self, status: str) -> None:
        self.say(status)
        if self.bar_before is not None:  # as the run left it: "finished" over an export's emptied bar read 0%
            bar = self.query_one("#tr-progress", ProgressBar)
            (bar.display, bar.total, bar.progress), self.bar_before = self.bar_before, None
