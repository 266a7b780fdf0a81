"""Every enabled button and screen key of every wizard step and dialog, used once at 80×24 with the fake engine:
none raises.

A handler change once broke Parameters' Save (AttributeError in its handler) and no test clicked it. Each one meets
the screen as first reached, so that one button's effect (a step left, a dialog closed) hides no other's: the next
one is used in the same app only where the app's state after it is what it was (``_state``), else in a fresh app."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from textual.screen import Screen
from textual.widgets import Button

from dbtui.app import make_app
from dbtui.session import Session
from wizard_fakes import FakeEngine
from tests.test_wizard_80x24 import SCREENS, screen_lines  # how each screen is reached, as the 80x24 layout tests reach it
from wizard_steps import settle

SIZE = (80, 24)
# A screen's own attributes are the others: its handlers' flags and values (and its own reactives').
_TEXTUAL_ATTRS = frozenset(vars(Screen())) | {f"_reactive_{name}" for name in Screen._reactives}
_PLAIN = (bool, int, float, str, type(None), tuple, list, dict, set, frozenset, Path)


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


def _state(app) -> tuple:
    """What a target meets and may change: the screens (the top one by kind, so that a dialog closed and opened again
    counts as the same), what each screen's handlers keep, the focus, the theme, the draft and all the session learned,
    the fake engine's settings, the app's own records, what the terminal shows, and whether the app ended. Not the
    notifications: what a target says changes nothing the next one does. Two reads with nothing done between agree."""
    stack = app.screen_stack
    kept = [{key: repr(value) for key, value in vars(screen).items()
             if key not in _TEXTUAL_ATTRS and isinstance(value, _PLAIN)} for screen in stack]
    engine = {key: value for key, value in vars(app.engine).items() if key not in ("calls", "estimated")}  # records only
    return ([id(screen) for screen in stack[:-1]], type(stack[-1]).__name__, kept, repr(app.focused), app.theme,
            repr(vars(app.session)), repr(engine), repr(app.conversions), repr(app.run_notices), screen_lines(app),
            app.return_code)


async def _activate_each(name: str, targets: Callable[[object], list[str]],
                         activate: Callable[[object, str], Awaitable[None]]) -> list[str]:
    """Activate each target of screen ``name`` once, each meeting the screen as reached: one target's effect (a step
    left, a dialog closed, a dataset prepared into a folder the fake engine never makes) would change what the next one
    meets. The next target goes on in the same app where the state after one is the state as reached (or where it was
    before the reach's last step, which is then taken again: a dialog closed is opened again); else in a fresh app."""
    reach = SCREENS[name]
    pending: list[str] | None = None
    done: list[str] = []
    while pending is None or pending:
        app = make_app(FakeEngine(), Session(), image_renderer="none")
        target = "(reaching it)"
        try:
            async with app.run_test(size=SIZE) as pilot:
                if reach.base is not None:
                    await reach.base(pilot)
                await settle(pilot)
                based = _state(app)
                if reach.last is not None:
                    await reach.last(pilot)
                await settle(pilot)
                assert type(app.screen).__name__ == name
                reached = _state(app)
                if pending is None:
                    pending = targets(app)
                while pending:
                    target = pending.pop(0)
                    await activate(pilot, target)
                    await settle(pilot)
                    assert app._exception is None, f"{name}: {target} raised {app._exception!r}"
                    done.append(target)
                    after = _state(app)
                    if after != reached and after == based and reach.last is not None:
                        target = f"(reaching it again after {target})"
                        await reach.last(pilot)
                        await settle(pilot)
                        after = _state(app)
                    if after != reached:
                        break
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
