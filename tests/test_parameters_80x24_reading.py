"""The Parameters step read at 80×24 on a Flux draft: the focus moves between things one can see, and what wraps keeps
its indent."""

from __future__ import annotations

import dataclasses

import pytest
from textual.geometry import Region

from dbtui.app import make_app
from dbtui.session import Session
from engine.memory.estimate import GIB
from test_flux_wizard import flux_draft, open_parameters
from test_wizard_80x24 import SIZE, settle
from wizard_fakes import FakeEngine


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


async def test_shift_tab_from_apply_goes_to_next_and_the_keys_still_scroll_the_form() -> None:
    """Shift+Tab from Apply landed on the form's scroll body, which shows no focus, before it reached Next."""
    engine = FakeEngine()
    app = make_app(engine, Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await open_parameters(pilot, flux_draft(engine))
        app.screen.query_one("#par-apply").focus()
        await pilot.press("shift+tab")
        await settle(pilot)
        assert app.focused is not None and app.focused.id == "nav-next", app.focused
        app.screen.query_one("#f-name").focus()
        await pilot.press("pagedown")
        await settle(pilot)
        assert app.screen.query_one("#par-body").scroll_y > 0  # from the focused field


class CachingEngine(FakeEngine):
    """Its estimate has a caching pass, whose breakdown line is longer than 80 columns."""

    def estimate_memory(self, profile, stop=None):
        return dataclasses.replace(super().estimate_memory(profile, stop), caching=int(0.07 * GIB))


async def test_the_fit_tests_memory_breakdown_keeps_its_indent_where_a_line_wraps() -> None:
    """"GPU: 0.82 GB on the card" ran on from the left edge under "caching pass …", level with the headings."""
    engine = CachingEngine()
    app = make_app(engine, Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await open_parameters(pilot, flux_draft(engine))
        await pilot.press("ctrl+f")
        await settle(pilot)
        result = app.screen.query_one("#par-fit-result")
        rows = [strip.text.rstrip() for strip in result.render_lines(Region(0, 0, result.size.width, result.size.height))]
        meter = next(row for row, text in enumerate(rows) if text.startswith("Memory meter"))
        caching = next(row for row, text in enumerate(rows) if "caching pass" in text)
        assert not rows[caching].endswith("on the card"), rows  # it wraps at 80 columns
        assert all(text.startswith("  ") and text[2] != " " for text in rows[meter + 1:] if text), rows
