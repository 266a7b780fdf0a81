"""Every enabled button and screen key of every wizard step and dialog, used once at 80×24 with the fake engine:
none raises.

A handler change once broke Parameters' Save (AttributeError in its handler) and no test clicked it. Each one is
used in an app of its own, so that one button's effect (a step left, a dialog closed) hides no other's."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from textual.widgets import Button

from dbtui.app import make_app
from dbtui.session import Session
from wizard_fakes import FakeEngine
from tests.test_wizard_80x24 import SCREENS  # how each screen is reached, as the 80x24 layout tests reach it
from wizard_steps import settle

SIZE = (80, 24)


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch, demo_data):
    monkeypatch.chdir(tmp_path)


def _enabled_buttons(app) -> list[str]:
    return [button.id for button in app.screen.query(Button) if button.id and not button.disabled and button.display]


def _screen_keys(app) -> list[str]:
    """The keys the screen binds (not a focused widget's editing or scrolling keys); the app's own keys (help, theme,
    palette, quit) are the same on every screen, and the start screen tries them."""
    nodes = (app.screen, app) if type(app.screen).__name__ == "StartScreen" else (app.screen,)
    return [key for key, active in app.active_bindings.items()
            if active.node in nodes and key not in ("tab", "shift+tab", "ctrl+c", "super+c")]


async def _activate_each(name: str, targets: Callable[[object], list[str]],
                         activate: Callable[[object, str], Awaitable[None]]) -> list[str]:
    """Activate each target of screen ``name`` once, each in a fresh app: one target's effect (a step left, a dialog
    closed, a dataset prepared into a folder the fake engine never makes) would change what the next one meets."""
    pending: list[str] | None = None
    done: list[str] = []
    while pending is None or pending:
        app = make_app(FakeEngine(), Session(), image_renderer="none")
        target = "(reaching it)"
        try:
            async with app.run_test(size=SIZE) as pilot:
                await SCREENS[name](pilot)
                assert type(app.screen).__name__ == name
                if pending is None:
                    pending = targets(app)
                if pending:
                    target = pending.pop(0)
                    await activate(pilot, target)
                    await settle(pilot)
                    assert app._exception is None, f"{name}: {target} raised {app._exception!r}"
                    done.append(target)
        except Exception as error:  # run_test re-raises a handler's error as it exits: name what did it
            raise AssertionError(f"{name}: {target} raised {error!r}") from error
        assert app.return_code in (None, 0), f"{name}: {target} ended the app with {app.return_code}"
    return done


async def _press_button(pilot, button_id: str) -> None:
    pilot.app.screen.query_one(f"#{button_id}", Button).press()


async def _press_key(pilot, key: str) -> None:
    await pilot.press(key)


@pytest.mark.parametrize("name", SCREENS)
async def test_every_enabled_button_presses_without_an_error(name: str) -> None:
    await _activate_each(name, _enabled_buttons, _press_button)


@pytest.mark.parametrize("name", SCREENS)
async def test_every_screen_key_works_without_an_error(name: str) -> None:
    assert await _activate_each(name, _screen_keys, _press_key)
