"""The dataset doctor's findings, filterable by severity, with the highlighted one in full."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.content import Content
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import DataTable, Select, Static

from dbtui.cli.printable import printable
from dbtui.finding_name import finding_name

SEVERITY_STYLE = {"error": "[red]error[/]", "warning": "[yellow]warn[/]", "info": "[dim]info[/]"}


class FindingsView(Vertical):
    """Summary line, severity filter, a table of findings (one line each), and the highlighted
    finding in full below it, wrapped, so nobody scrolls a cell sideways; posts Highlighted."""

    # The summary wraps beside the filter rather than be cut: at 80 columns it has 40 ("… · 12 warn · 1 info").
    # The detail grows to its finding: beside the Dataset step's preview a fixed three lines cut off its "What to do".
    DEFAULT_CSS = """
    FindingsView { height: auto; }
    FindingsView > Horizontal { height: auto; }
    FindingsView #findings-summary { width: 1fr; padding: 0 1; }
    FindingsView Select { width: 14; }
    FindingsView DataTable { height: 7; }
    FindingsView #findings-detail { height: auto; min-height: 3; padding: 0 1; background: $boost; }
    """

    class Highlighted(Message):
        def __init__(self, path: str) -> None:
            super().__init__()
            self.path = path

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.report: Any = None

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Static("not checked yet", id="findings-summary")
            yield Select([("all", "all"), ("errors", "error"), ("warnings", "warning"), ("info", "info")],
                         value="all", allow_blank=False, compact=True, id="findings-filter")
        table = DataTable(id="findings-table", cursor_type="row", zebra_stripes=True)
        table.add_columns("severity", "file", "problem")
        yield table
        yield Static("", id="findings-detail")

    def show(self, report: Any) -> None:
        self.report = report
        summary = report.summary
        counts = summary.counts
        info = counts.get("info", 0)
        # Info last and only when there is some: at 80 columns the line has about 40 characters before it wraps.
        self.query_one("#findings-summary", Static).update(
            f"{summary.images} images, {summary.usable} usable · [red]{counts.get('error', 0)} err[/] · "
            f"[yellow]{counts.get('warning', 0)} warn[/]" + (f" · {info} info" if info else ""))
        self._fill()

    def clear(self, note: str | Content) -> None:
        """No findings (the folder changed, or the check failed): ``note`` says why, until the next check (markup, or
        Content where it holds the engine's words)."""
        self.report = None
        self.query_one("#findings-summary", Static).update(note)
        self.query_one("#findings-detail", Static).update("")
        self._fill()

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        self._fill()

    def _fill(self) -> None:
        table = self.query_one(DataTable)
        table.clear()
        if self.report is None:
            return
        wanted = self.query_one(Select).value
        for index, finding in enumerate(self.report.findings):
            if wanted in ("all", finding.severity):
                # A name's newline would cut the cell to its first part ("new" for new⏎line.png), as in the CLI.
                # Its path under the folder, else a/x.png and b/x.png both read x.png; the detail has it whole.
                name = finding_name(finding.path, self.report.folder, whole_outside=False)
                table.add_row(SEVERITY_STYLE.get(finding.severity, finding.severity), Text(printable(name)),
                              Text(printable(finding.message)), key=str(index))

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        if isinstance(event.widget, DataTable):
            self._detail_in_view()

    def _detail_in_view(self) -> None:
        """Read from the table, the highlighted finding below it comes into view whole, once laid out: the focus
        brought the table alone, and in a step's scroll body the detail's last lines stayed out of sight."""
        self.call_after_refresh(self.query_one("#findings-detail").scroll_visible, animate=False)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        if self.report is not None and event.row_key.value is not None:
            finding = self.report.findings[int(event.row_key.value)]
            # The words as values, not in the markup: escaped, a message ending in \ still ate the tag after it.
            detail = Content.from_markup("[b]$name[/] $message" + ("\n[b]What to do:[/] $fix" if finding.fix else ""),
                                         name=printable(finding_name(finding.path, self.report.folder)),
                                         message=printable(finding.message), fix=printable(finding.fix))
            self.query_one("#findings-detail", Static).update(detail)
            if self.query_one(DataTable).has_focus:
                self._detail_in_view()
            self.post_message(self.Highlighted(finding.path))
