"""The Parameters step read by keyboard at 80×24 on a Flux draft: the focus moves between things one can see."""

from __future__ import annotations

import pytest

from dbtui.app import make_app
from dbtui.session import Session
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
