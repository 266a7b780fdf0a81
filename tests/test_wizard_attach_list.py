"""The wizard's Attach list as a new user meets it right after `dbtui demo`: where the demo's run is, and the keys that
reach a run listed from a folder typed in."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input, OptionList, Static

from dbtui.app import make_app
from dbtui.engine_facade import RealEngine
from dbtui.screens.attach import AttachScreen
from dbtui.session import Session
from engine.events import RunFinished, RunStarted
from engine.runs.folder import RunFolder
from wizard_steps import settle


def _finished_run(path: Path) -> RunFolder:
    folder = RunFolder(path).create()
    lines = [RunStarted(run_dir=str(folder.path), profile={}, hardware={}, versions={}, total_steps=10),
             RunFinished(step=10, outputs={}, seconds=1.0, status="finished")]
    folder.events.write_text("".join(event.to_json() + "\n" for event in lines), encoding="utf-8")
    return folder


def _note(screen: AttachScreen) -> str:
    return str(screen.query_one("#attach-note", Static).render())


async def test_an_empty_runs_folder_says_where_the_demos_run_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """After `dbtui demo` (its run in dbtui-demo/runs), the wizard's Attach said 'no runs in runs/' and no more, where
    `dbtui runs` names dbtui-demo/runs: the user was left to guess where the run went. The note now names it."""
    monkeypatch.chdir(tmp_path)
    _finished_run(tmp_path / "dbtui-demo" / "runs" / "tiny-demo")
    engine = RealEngine()
    app = make_app(engine, Session.for_demo(), image_renderer="none")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = AttachScreen(engine, "runs")
        app.push_screen(screen)
        await settle(pilot)
        assert "no runs in runs/" in _note(screen) and "dbtui-demo/runs" in _note(screen), _note(screen)


async def test_enter_attaches_to_a_run_listed_from_a_folder_typed_in(tmp_path: Path) -> None:
    """A folder typed into Attach and Enter listed its runs under '1 run(s) in … (Enter attaches)', but the keys stayed
    in the folder field: Enter listed the folder again and ↓ did nothing, so the run could not be reached but by Tab.
    The listed runs now take the keys, and Enter attaches."""
    folder = _finished_run(tmp_path / "elsewhere" / "my-run")
    engine = RealEngine()
    app = make_app(engine, Session.for_demo(), image_renderer="none")
    async with app.run_test(size=(80, 24)) as pilot:
        chosen: list[Path | None] = []
        screen = AttachScreen(engine, str(tmp_path / "runs"))
        app.push_screen(screen, chosen.append)
        await settle(pilot)
        field = screen.query_one("#attach-dir", Input)
        field.focus()
        field.value = str(folder.path.parent)
        await pilot.press("enter")
        await settle(pilot)
        assert "1 run(s)" in _note(screen) and app.focused is screen.query_one(OptionList)
        await pilot.press("enter")
        await settle(pilot)
    assert chosen == [folder.path]
