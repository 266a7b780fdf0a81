"""Every enabled button and screen key of every wizard step and dialog, used once at 80×24 with the fake engine:
none raises.

A handler change once broke Parameters' Save (AttributeError in its handler) and no test clicked it. Each one is
used in an app of its own, so that one button's effect (a step left, a dialog closed) hides no other's."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from textual.screen import Screen
from textual.widgets import Button

from dbtui.app import make_app
from dbtui.screens.caption_mode import CaptionModeScreen
from dbtui.screens.overwrite import OverwriteScreen
from dbtui.screens.resume import ResumeScreen
from dbtui.session import Session
from wizard_fakes import FakeEngine
from wizard_steps import settle

SIZE = (80, 24)

Reach = Callable[[object], Awaitable[None]]


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch, demo_data):
    monkeypatch.chdir(tmp_path)


async def _demo_at(pilot, step: int) -> None:
    await pilot.press("d")  # the demo: a model and a dataset the fake engine answers for
    await settle(pilot)
    pilot.app.goto(step)
    await settle(pilot)


def keys_then(*keys: str) -> Reach:
    async def reach(pilot) -> None:
        await settle(pilot)
        await pilot.press(*keys)
        await settle(pilot)
    return reach


def step_then(step: int, *keys: str) -> Reach:
    async def reach(pilot) -> None:
        await _demo_at(pilot, step)
        if keys:
            await pilot.press(*keys)
            await settle(pilot)
    return reach


def pushed(make: Callable[[], Screen]) -> Reach:
    async def reach(pilot) -> None:
        await _demo_at(pilot, 3)
        pilot.app.push_screen(make())
        await settle(pilot)
    return reach


SCREENS: dict[str, Reach] = {
    "StartScreen": keys_then(),
    "HardwareScreen": keys_then("n"),
    "ModelScreen": step_then(1),
    "DatasetScreen": step_then(2),
    "CaptionScreen": step_then(2, "ctrl+o"),
    "ParametersScreen": step_then(3),
    "CommandScreen": step_then(3, "ctrl+g"),
    "TrainingScreen": step_then(4),
    "HelpScreen": keys_then("f1"),
    "AttachScreen": keys_then("a"),
    "OpenProfileScreen": keys_then("o"),
    "ResumeScreen": pushed(lambda: ResumeScreen("runs/tiny-demo holds checkpoint-30")),
    "OverwriteScreen": pushed(lambda: OverwriteScreen(Path("profiles/tiny-demo.toml"))),
    "CaptionModeScreen": pushed(lambda: CaptionModeScreen()),
}


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
