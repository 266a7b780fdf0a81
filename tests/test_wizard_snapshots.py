"""An SVG snapshot of every screen at 80×24, driven by the fake engine (plain `def` tests:
snap_compare runs its own event loop)."""

from __future__ import annotations

import pytest

from dbtui.app import make_app
from dbtui.session import Session
from wizard_fakes import FakeEngine

SIZE = (80, 24)


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative paths (profiles/, runs/) stay out of the snapshots' way


def _app(session: Session | None = None):
    # The halfcell renderer is pinned: textual-image would otherwise ask the terminal.
    return make_app(FakeEngine(), session or Session(), image_renderer="halfcell")


async def _steady(pilot) -> None:
    """Stop cursors blinking, so a snapshot never catches one half-way."""
    for widget in pilot.app.screen.query("Input, TextArea"):
        widget.cursor_blink = False
    await pilot.pause(0.1)


def _keys(*keys: str):
    async def run_before(pilot) -> None:
        await pilot.press(*keys)
        await pilot.pause(0.3)
        await _steady(pilot)
    return run_before


def _at(step: int, then=None):
    async def run_before(pilot) -> None:
        await pilot.press("d")  # the demo
        await pilot.pause()
        pilot.app.goto(step)
        await pilot.app.workers.wait_for_complete()
        await pilot.pause(0.3)
        if then is not None:
            await then(pilot)
            await pilot.app.workers.wait_for_complete()
            await pilot.pause(0.6)
        await _steady(pilot)
    return run_before


def test_start_screen(snap_compare) -> None:
    assert snap_compare(_app(), terminal_size=SIZE)


def test_hardware_screen_on_a_cpu_machine(snap_compare) -> None:
    async def run_before(pilot) -> None:
        await pilot.press("n")  # a new profile: the demo button is offered
        await pilot.app.workers.wait_for_complete()
        await pilot.pause(0.3)
        await _steady(pilot)
    assert snap_compare(_app(), terminal_size=SIZE, run_before=run_before)


def test_model_screen(snap_compare) -> None:
    assert snap_compare(_app(), terminal_size=SIZE, run_before=_at(1))


def test_model_screen_with_an_sdxl_folder(snap_compare) -> None:
    async def run_before(pilot) -> None:
        await pilot.press("n")  # a new profile: its hub id names no family, and no resolution yet
        await pilot.app.workers.wait_for_complete()
        pilot.app.goto(1)
        await pilot.app.workers.wait_for_complete()
        await pilot.pause(0.3)
        await pilot.press("end", "ctrl+u", *"models/sdxl-base", "enter")
        await pilot.app.workers.wait_for_complete()
        await pilot.pause(0.3)
        await _steady(pilot)
    assert snap_compare(_app(), terminal_size=SIZE, run_before=run_before)


def test_dataset_screen_after_a_check(snap_compare) -> None:
    async def check(pilot) -> None:
        await pilot.press("ctrl+r")
    assert snap_compare(_app(), terminal_size=SIZE, run_before=_at(2, check))


def test_caption_screen(snap_compare) -> None:
    async def captions(pilot) -> None:
        await pilot.press("ctrl+o")
    assert snap_compare(_app(), terminal_size=SIZE, run_before=_at(2, captions))


def test_parameters_screen_with_a_problem(snap_compare) -> None:
    async def break_it(pilot) -> None:
        pilot.app.screen.query_one("#f-training--max_train_steps").value = "lots"
    assert snap_compare(_app(), terminal_size=SIZE, run_before=_at(3, break_it))


def test_command_screen(snap_compare) -> None:
    async def command(pilot) -> None:
        await pilot.press("ctrl+g")
    assert snap_compare(_app(), terminal_size=SIZE, run_before=_at(3, command))


def test_training_dashboard(snap_compare) -> None:
    assert snap_compare(_app(), terminal_size=SIZE, run_before=_at(4))


def test_help_screen(snap_compare) -> None:
    assert snap_compare(_app(), terminal_size=SIZE, run_before=_keys("f1"))


def test_attach_screen(snap_compare) -> None:
    assert snap_compare(_app(), terminal_size=SIZE, run_before=_keys("a"))


def test_open_profile_screen(snap_compare) -> None:
    assert snap_compare(_app(), terminal_size=SIZE, run_before=_keys("o"))


def test_help_on_the_parameters_step(snap_compare) -> None:
    async def help_(pilot) -> None:
        await pilot.press("f1")
    assert snap_compare(_app(), terminal_size=SIZE, run_before=_at(3, help_))


def test_parameters_focus_in_the_light_theme(snap_compare) -> None:
    async def light(pilot) -> None:
        pilot.app.theme = "textual-light"
        await pilot.press("tab", "tab")  # from the run name to the number of steps
    assert snap_compare(_app(), terminal_size=SIZE, run_before=_at(3, light))


def test_overwrite_screen(snap_compare) -> None:
    async def overwrite(pilot) -> None:
        from pathlib import Path

        from dbtui.screens.overwrite import OverwriteScreen

        pilot.app.push_screen(OverwriteScreen(Path("profiles/tiny-demo.toml")))
    assert snap_compare(_app(), terminal_size=SIZE, run_before=_at(3, overwrite))


def test_resume_screen(snap_compare) -> None:
    async def resume(pilot) -> None:
        from dbtui.screens.resume import ResumeScreen

        pilot.app.push_screen(ResumeScreen("runs/tiny-demo holds checkpoint-30 (step 30 of 60)."))
    assert snap_compare(_app(), terminal_size=SIZE, run_before=_at(3, resume))
