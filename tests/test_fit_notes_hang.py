"""The fit test's memory notes at 80x24: a "note:" line that wraps hangs under its text, as the breakdown's lines hang
under their figures; its rows ran on under "note:", where they read as lines of their own."""

from __future__ import annotations

import dataclasses

import pytest
from textual.geometry import Region

from dbtui.app import make_app
from dbtui.session import Session
from test_flux_wizard import flux_draft, open_parameters
from test_wizard_80x24 import SIZE, settle
from wizard_fakes import FakeEngine

NOTE = ("the text encoders are on the GPU only while the captions are cached, then leave it for the transformer, "
        "which this estimate counts from the first step on")


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


class NotedEngine(FakeEngine):
    def estimate_memory(self, profile, stop=None):
        return dataclasses.replace(super().estimate_memory(profile, stop), notes=(NOTE,))


async def test_a_wrapped_memory_note_hangs_under_its_text() -> None:
    engine = NotedEngine()
    app = make_app(engine, Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await open_parameters(pilot, flux_draft(engine))
        await pilot.press("ctrl+f")
        await settle(pilot)
        result = app.screen.query_one("#par-fit-result")
        rows = [strip.text.rstrip() for strip in result.render_lines(Region(0, 0, result.size.width, result.size.height))]
        note = next(row for row, text in enumerate(rows) if "note: the text encoders" in text)
        text = rows[note].index("the text encoders")
        assert rows[note + 1][:text].isspace() and rows[note + 1][text] != " ", rows
        assert NOTE.split()[-1] in " ".join(rows[note + 1:note + 4])  # the note is whole
