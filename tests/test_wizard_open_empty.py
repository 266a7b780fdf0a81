"""An empty profile opened from the wizard's Open screen was refused with the CLI's advice, "or make one with the
wizard, `dbtui`", to someone already in the wizard: there it says how to make one from where they are."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input

from dbtui.app import make_app
from dbtui.session import Session
from wizard_fakes import FakeEngine
from wizard_steps import settle


@pytest.mark.parametrize(("text", "said"), [("", "it is empty"), ("# to do\n", "only comments")])
async def test_an_empty_profile_opened_in_the_wizard_is_not_sent_to_run_dbtui(tmp_path: Path, monkeypatch, text: str,
                                                                              said: str) -> None:
    monkeypatch.chdir(tmp_path)
    empty = tmp_path / "mine.toml"
    empty.write_text(text, encoding="utf-8")
    app = make_app(FakeEngine(), Session(), image_renderer="none")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("o")
        await settle(pilot)
        app.screen.query_one("#open-path", Input).value = str(empty)
        await pilot.press("enter")
        await settle(pilot)
        assert type(app.screen).__name__ == "OpenProfileScreen"
        [message] = [n.message for n in app._notifications if n.severity == "error"]
        assert f"holds no settings ({said}): start from an example" in message
        assert "`dbtui`" not in message and "Esc, then n" in message
