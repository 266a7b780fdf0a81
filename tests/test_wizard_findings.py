"""The doctor's findings at 80×24: the highlighted one is shown whole, with what to do."""

from __future__ import annotations

from pathlib import Path

from textual.app import App, ComposeResult
from textual.widgets import DataTable

from dbtui.app import make_app
from dbtui.session import Session
from dbtui.widgets.findings import FindingsView
from engine.dataset.report import Finding
from test_wizard_80x24 import at_step, screen_lines, settle
from wizard_fakes import FakeEngine, Report, Summary

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


# The demo's own caption warning, as the real doctor words it: five lines and more beside the preview at 80 columns.
CAPTIONS_UNREAD = ('6 of 6 image(s) have a caption file (.txt), which training does not read: the caption mode is '
                   '"instance_prompt", so each image trains with its instance prompt alone')
CAPTIONS_FIX = ('to train with them, set caption_mode = "caption_file_then_prompt" (each caption, then the instance '
                'prompt) or "caption_file"; nothing to do if the prompt alone is meant')


class _UnreadCaptionsEngine(FakeEngine):
    def check_dataset(self, profile, concept: int, emit=None) -> Report:
        finding = Finding(profile.concepts[concept].instance_dir, "captions_unused", "warning", CAPTIONS_UNREAD,
                          CAPTIONS_FIX)
        return Report(profile.concepts[concept].instance_dir, (finding,), Summary(6, 6, {"warning": 1}))


async def test_on_the_dataset_step_the_highlighted_finding_shows_whole_and_in_view(tmp_path, monkeypatch) -> None:
    """Beside the preview at 80×24 the detail's three lines cut the demo's caption warning after "trains with its",
    and its "What to do" never showed."""
    monkeypatch.chdir(tmp_path)
    app = make_app(_UnreadCaptionsEngine(), Session(), image_renderer="none")
    async with app.run_test(size=(80, 24)) as pilot:
        await at_step(pilot, 2)
        await pilot.press("ctrl+r")
        await settle(pilot)
        while not app.screen.query_one(DataTable).has_focus:  # by the keyboard, as a user reaches it
            await pilot.press("tab")
            await settle(pilot, 0.05)
        await settle(pilot)
        detail = app.screen.query_one("#findings-detail").region
        lines = screen_lines(app)
        shown = " ".join(lines[y][detail.x:detail.right].strip() for y in range(detail.y, min(detail.bottom, 22)))
        assert CAPTIONS_UNREAD in shown and f"What to do: {CAPTIONS_FIX}" in shown, shown


async def test_findings_of_sub_folders_name_each_file_by_its_path_under_the_folder(tmp_path) -> None:
    """A folder's a/x.png and b/x.png, read with its sub-folders: the table and the detail said "x.png" for both,
    where `dbtui dataset check` says a/x.png and b/x.png."""
    from PIL import Image

    from engine.dataset.checks import check_dataset

    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        Image.new("RGB", (32, 32), (200, 10, 10)).save(tmp_path / sub / "x.png")  # too small for 512 px
    report = check_dataset(tmp_path, recursive=True, caption_mode=None, workers=1)
    named = sorted({finding.path for finding in report.findings} - {str(tmp_path)})
    assert named == [str(tmp_path / "a" / "x.png"), str(tmp_path / "b" / "x.png")]
    app = _Host()
    async with app.run_test(size=(80, 24)) as pilot:
        view = app.query_one(FindingsView)
        view.show(report)
        await pilot.pause()
        table = view.query_one(DataTable)
        files = {str(table.get_row_at(row)[1]) for row in range(table.row_count)}
        assert {"a/x.png", "b/x.png"} <= files and "x.png" not in files
        table.focus()
        await pilot.press("down", "up")
        await pilot.pause()
        first = report.findings[0]
        detail = str(view.query_one("#findings-detail").render())
        assert detail.startswith(str(Path(first.path).relative_to(tmp_path)) if first.path != str(tmp_path) else "(folder)")


async def test_a_finding_outside_the_folder_leaves_the_table_room_for_its_problem() -> None:
    """A class folder beside the instance folder (the usual place): its findings were named by their whole path, which
    filled the 80 columns and left the problem column a sliver (13 columns); the detail names it whole."""
    beside = "/home/anna/datasets/my_dog_photos_class"
    findings = (Finding(f"{beside}/class_0001.png", "too_small", "warning", "is 256×256 px, too small",
                        "replace it"),)
    app = _Host()
    async with app.run_test(size=(80, 24)) as pilot:
        view = app.query_one(FindingsView)
        view.show(Report("/home/anna/datasets/my_dog_photos", findings, Summary(1, 1, {"warning": 1})))
        await pilot.pause()
        table = view.query_one(DataTable)
        assert str(table.get_row_at(0)[1]) == "my_dog_photos_class/class_0001.png"
        assert any("is 256×256 px, too small" in line for line in screen_lines(app))
        table.focus()
        await pilot.press("down", "up")
        await pilot.pause()
        assert str(view.query_one("#findings-detail").render()).startswith(f"{beside}/class_0001.png is 256×256")
