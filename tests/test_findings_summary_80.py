"""The dataset step's findings summary at 80 columns: a check of six photos said "6 images, 6 usable · 0 err · 9 warn
· 1", its "info" wrapped onto a second row that its one-row line cut off; "captions changed since the check: ctrl+r
checks again" lost its "checks again" so."""

from __future__ import annotations

from pathlib import Path

from dbtui.app import make_app
from dbtui.session import Session
from dbtui.widgets.findings import FindingsView
from test_wizard_80x24 import screen_lines
from wizard_fakes import FakeEngine, Finding, Report, Summary
from wizard_steps import at_step, settle


def _report(folder: str) -> Report:
    findings = [Finding(f"{folder}/img{i}.jpg", "blurry", "warning", "looks blurry", "retake it") for i in range(12)]
    findings.append(Finding(folder, "tokens", "info", "the identifier cannot be judged", ""))
    return Report(folder, tuple(findings), Summary(20, 20, {"error": 0, "warning": 12, "info": 1}))


async def test_the_findings_summary_is_shown_whole_at_80_columns(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    app = make_app(FakeEngine(), Session.for_demo(), image_renderer="none")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await at_step(app, pilot, 2, "DatasetScreen")
        view = screen.query_one(FindingsView)
        view.show(_report(str(tmp_path)))
        await settle(pilot)
        shown = "\n".join(screen_lines(app))
        assert "12 warn" in shown and "1 info" in shown, shown
        view.clear("captions changed since the check: ctrl+r checks again")
        await settle(pilot)
        shown = "\n".join(screen_lines(app))
        assert "checks again" in shown, shown
