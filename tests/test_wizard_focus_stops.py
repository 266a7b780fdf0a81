"""Tab and Shift+Tab through each wizard step at 80×24: the focus stops only on things one can see and use."""

from __future__ import annotations

import pytest
from textual.widgets import Button, DataTable, Input, Select, Switch
from textual.widgets._collapsible import CollapsibleTitle

from dbtui.app import make_app
from dbtui.session import Session
from dbtui.widgets.overflow_scroll import OverflowScroll
from test_wizard_80x24 import SIZE, settle
from wizard_fakes import FakeEngine

# What shows the focus and answers a key; an OverflowScroll is a stop only while it holds more than it shows.
INTERACTIVE = (Input, Button, Select, Switch, DataTable, CollapsibleTitle, OverflowScroll)


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


# Parameters, whose every Tab restyles a long form, is read so in test_parameters_80x24_reading.py.
async def test_tab_and_shift_tab_stop_only_on_visible_interactive_widgets() -> None:
    """The Model, Dataset and Hardware steps' scroll bodies took the focus: one Tab or Shift+Tab between Next and the
    first field landed on a container that shows no focus, and seemed to do nothing."""
    app = make_app(FakeEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("d")  # the demo
        await pilot.pause()
        # One app walks the three steps, as at_step goes to each: goto() builds the step's screen afresh, and Tab
        # and Shift+Tab move only the focus, so a step visited before changes nothing the next one shows.
        for index, step in enumerate(("hardware", "model", "dataset")):
            app.goto(index)
            await settle(pilot, 0.3)
            stops = len(app.screen.focus_chain)
            assert stops > 2, step  # the step's own widgets, and Back and Next
            for key in ("tab", "shift+tab"):
                for _ in range(stops + 1):  # once round, and past the start again
                    await pilot.press(key)
                    await pilot.pause()
                    focused = app.focused
                    assert isinstance(focused, INTERACTIVE), (step, key, focused)
                    assert focused in app.screen._compositor.visible_widgets, (step, key, focused, focused.region)
