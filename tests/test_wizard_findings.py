"""The doctor's findings at 80×24: the highlighted one is shown whole, with what to do."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.widgets import DataTable

from dbtui.widgets.findings import FindingsView
from engine.dataset.report import Finding
from wizard_fakes import Report, Summary

LONG = ("is 300×200 px (aspect 1.50:1): cropping to a square cuts 33% of it from the left and right, "
        "which here loses the [subject]'s ears")


class _Host(App):
    def compose(self) -> ComposeResult:
        yield FindingsView(id="findings")


def _report() -> Report:
    findings = (Finding("/data/photo [1].jpg", "aspect_crop", "warning", LONG, "turn on aspect-ratio bucketing"),)
    return Report("/data", findings, Summary(1, 1, {"warning": 1}))


async def test_the_highlighted_finding_is_shown_whole_with_its_fix() -> None:
    app = _Host()
    async with app.run_test(size=(80, 24)) as pilot:
        view = app.query_one(FindingsView)
        view.show(_report())
        await pilot.pause()
        view.query_one(DataTable).focus()
        await pilot.press("down", "up")
        await pilot.pause()
        detail = str(view.query_one("#findings-detail").render())
        assert LONG in detail.replace("\n", " ") or LONG in detail
        assert "photo [1].jpg" in detail and "What to do: turn on aspect-ratio bucketing" in detail
        assert view.query_one("#findings-detail").region.height >= 3


async def test_a_file_name_with_a_newline_is_one_line_in_the_table_and_the_detail() -> None:
    """new⏎line.png was shown as 'new' in the table, and the detail broke the name over two lines."""
    finding = Finding("/data/new\nline.png", "blurry", "warning", "is a near-duplicate of a\u202egnp.png", "keep one")
    app = _Host()
    async with app.run_test(size=(80, 24)) as pilot:
        view = app.query_one(FindingsView)
        view.show(Report("/data", (finding,), Summary(1, 1, {"warning": 1})))
        await pilot.pause()
        table = view.query_one(DataTable)
        table.focus()
        await pilot.press("down", "up")
        await pilot.pause()
        assert str(table.get_row_at(0)[1]) == "new\\x0aline.png"
        detail = str(view.query_one("#findings-detail").render())
        assert detail.startswith("new\\x0aline.png is a near-duplicate of a\\u202egnp.png\n")
