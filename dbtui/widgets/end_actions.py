"""What a run that has ended offers on the dashboard: export its best step (or the nearest kept one)
and write its report. The buttons, their workers and their results live here; the screen shows
the lines and progress this widget posts (``Said``, ``ExportProgress``) in its own log and bar."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.notifications import SeverityLevel
from textual.widgets import Button

from dbtui.conversions import Export
from dbtui.messages import WorkFailed
from engine.evaluation.best import BestStep
from engine.events import Event, PhaseProgress
from engine.runs.folder import RunFolder
from engine.runs.keep import Keep, how_to_keep
from engine.runs.score_words import sentence, uncompared_said


class EndActions(Horizontal):
    """Hidden while the run goes on; ``show(True)`` when it ends, ``offer`` once its best step is known."""

    DEFAULT_CSS = "EndActions { width: auto; height: 1; display: none; }"

    @dataclass
    class Said(Message):
        """A line for the run's log."""

        line: str

    @dataclass
    class ExportOffered(Message):
        """How to keep the best step of the run that ended."""

        folder: Path
        keep: Keep

    @dataclass
    class ExportProgress(Message):
        event: Event

        def can_replace(self, message: Message) -> bool:
            old, new = getattr(message, "event", None), self.event
            return (isinstance(message, EndActions.ExportProgress) and isinstance(new, PhaseProgress)
                    and isinstance(old, PhaseProgress) and old.phase == new.phase)

    @dataclass
    class ExportEnded(Message):
        """``outputs`` is None when the export failed (a WorkFailed says why)."""

        step: int
        outputs: dict[str, str] | None

    @dataclass
    class ReportWritten(Message):
        path: Path

    def __init__(self, engine, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.engine = engine
        self.folder: Path | None = None
        self.keep: Keep | None = None  # the export offered when the run ended with a best step

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = True) -> None:
        """Through the dashboard: what these buttons say is of the run that ended, so the next run started takes it
        down with the dashboard's own notices of it (dbtui/screens/run_notices.py)."""
        self.screen.notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    def compose(self) -> ComposeResult:
        yield Button("Export best (e)", id="tr-export", compact=True)
        yield Button("Report (r)", id="tr-report", compact=True)

    def show(self, ended: bool, folder: Path | None = None) -> None:
        """An ended run (in ``folder``) shows its report button, and its export button once an export is offered."""
        self.folder = folder or self.folder
        if not ended:
            self.keep = None
        self.display = ended
        self.query_one("#tr-export", Button).display = ended and self.keep is not None and self.keep.export_step is not None

    # -- keeping the best step ---------------------------------------------------------------

    def offer(self, folder: Path, best: BestStep, finished_at: int | None) -> None:
        """Find how to keep ``best`` from the checkpoints kept on disk; ``finished_at`` is a finished run's last step."""
        self.folder = folder
        self._find_export(folder, best, finished_at)

    @work(thread=True, exclusive=True, exit_on_error=False, group="keep")
    def _find_export(self, folder: Path, best: BestStep, finished_at: int | None) -> None:
        try:
            whole, damaged = self.engine.checked_checkpoints(folder)
            events = RunFolder(folder).events
            self.post_message(self.ExportOffered(folder, how_to_keep(best, whole, finished_at, damaged, events)))
        except Exception as error:  # noqa: BLE001 - shown to the user
            self.post_message(WorkFailed("Listing the checkpoints", str(error)))

    def on_end_actions_export_offered(self, message: ExportOffered) -> None:
        message.stop()
        if not self.display:
            return  # the run was resumed meanwhile: its next end brings a new offer
        keep = self.keep = message.keep
        uncompared = uncompared_said(keep.best)
        self.post_message(self.Said(f"Best step {keep.best.step}: {keep.advice(str(message.folder.absolute()))}"
                                    + (f"; {uncompared}" if uncompared else "")))
        if keep.export_step is None:
            return
        button = self.query_one("#tr-export", Button)
        button.label = f"Export step {keep.export_step} ({keep.choice}) (e)"
        button.disabled = False
        self.show(True)
        if not keep.exact:
            which = ("nearest, but it did not qualify (likely overfit)" if keep.rejected else
                     "nearest" if keep.export_step not in keep.best.qualifying else "best kept one that qualifies")
            missing = "'s checkpoint is damaged" if keep.best.step in keep.damaged else " has no kept checkpoint"
            self.notify(f"Step {keep.best.step}{missing}; step {keep.export_step} is the {which}. e exports it.",
                        title="Best step", severity="warning" if keep.rejected else "information")

    def export_best(self) -> None:
        keep, folder = self.keep, self.folder
        if keep is not None and keep.export_step is None and folder is not None:
            self.notify(sentence(keep.advice(str(folder.absolute()))) + ".", title=f"Best step {keep.best.step}")
            return
        if keep is None or keep.export_step is None or folder is None:
            self.notify("No best step to export: it is offered when a scored run ends with a kept checkpoint.",
                        severity="warning")
            return
        button = self.query_one("#tr-export", Button)
        if button.disabled:
            return  # under way, or done
        button.disabled = True
        button.label = f"Exporting step {keep.export_step}…"
        export = Export(f"step {keep.export_step}", folder.absolute() / "exports" / f"step-{keep.export_step}")
        self.app.conversions.append(export)  # Ctrl+Q says the process finishes it
        self._export(folder, keep.export_step, export)

    @work(thread=True, exclusive=True, exit_on_error=False, group="export")
    def _export(self, folder: Path, step: int, export: Export) -> None:
        try:
            outputs = self.engine.export_checkpoint(folder, step,
                                                    emit=lambda event: self.post_message(self.ExportProgress(event)))
        except Exception as error:  # noqa: BLE001 - shown to the user
            self.post_message(WorkFailed(f"Exporting step {step}", str(error)))
            outputs = None
        finally:
            export.done.set()
        self.post_message(self.ExportEnded(step, outputs))

    def on_end_actions_export_ended(self, message: ExportEnded) -> None:
        """Mark the button; the message goes on to the screen, which puts its phase back."""
        button = self.query_one("#tr-export", Button)
        if message.outputs is None:
            button.disabled = False
            button.label = f"Export step {message.step} (e)"
            return
        where = Path(self.folder or ".").absolute() / "exports" / f"step-{message.step}"
        button.label = f"Step {message.step} exported"
        self.post_message(self.Said(f"Exported step {message.step} into {where}/"))
        for kind, path in message.outputs.items():
            self.post_message(self.Said(f"  {kind}: {path}"))
        self.notify(f"Step {message.step} is in {where}/", title="Exported")

    # -- the report ------------------------------------------------------------------------

    def report(self) -> None:
        if self.folder is None:
            self.notify("No run yet.", severity="warning")
            return
        self._report(self.folder)

    @work(thread=True, exclusive=True, exit_on_error=False, group="report")
    def _report(self, folder: Path) -> None:
        try:
            self.post_message(self.ReportWritten(self.engine.write_report(folder)))
        except Exception as error:  # noqa: BLE001 - shown to the user
            self.post_message(WorkFailed("Writing the report", str(error)))

    def on_end_actions_report_written(self, message: ReportWritten) -> None:
        message.stop()
        self.post_message(self.Said(f"Report: {message.path}"))
        if self.app.is_web:  # dbtui serve: the browser running the app opens the page
            self.app.deliver_text(message.path, save_filename=message.path.name, open_method="browser",
                                  mime_type="text/html", encoding="utf-8")
        else:
            self.notify(f"{message.path}: open it in a browser (over SSH: copy it with scp, or see `dbtui report --help`).",
                        title="Report written", timeout=10)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "tr-export":
            self.export_best()
        elif event.button.id == "tr-report":
            self.report()
