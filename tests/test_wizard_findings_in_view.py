"""The Dataset step at 80x24: a check's findings came in below the step's fields, where a screenshot showed only their
summary line ("11 images, 11 usable · 0 err · 22 warn") over an empty-looking list. They scroll into view now."""

from __future__ import annotations

from pathlib import Path

from dbtui.app import make_app
from dbtui.session import Session
from test_wizard_80x24 import screen_lines
from wizard_fakes import FakeEngine, Finding, Report, Summary
from wizard_steps import at_step, settle

NAMES = [f"IMG_{i:04}.jpg" for i in range(11)]


class TwentyTwoWarnings(FakeEngine):
    def check_dataset(self, profile, concept: int, emit=None) -> Report:
        folder = "/data/phone"
        findings = [Finding(f"{folder}/{name}", code, "warning", said, "see the help")
                    for code, said in (("aspect_crop", "cropping to a square cuts 25% of it"), ("blurry", "looks blurry"))
                    for name in NAMES]
        return Report(folder, tuple(findings), Summary(11, 11, {"error": 0, "warning": 22, "info": 0}))


async def test_a_checks_findings_are_in_view_at_80x24(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    app = make_app(TwentyTwoWarnings(), Session.for_demo(), image_renderer="none")
    async with app.run_test(size=(80, 24)) as pilot:
        await at_step(app, pilot, 2, "DatasetScreen")
        await pilot.press("ctrl+r")
        await settle(pilot, 0.3)
        shown = "\n".join(screen_lines(app))
        assert "22 warn" in shown, shown
        rows = [line for line in screen_lines(app) if any(name in line for name in NAMES[:6]) and "warn " in line]
        assert len(rows) >= 5, shown  # the table's rows, not its summary alone
        assert "What to do: see the help" in shown, shown  # and the highlighted finding in full below it
