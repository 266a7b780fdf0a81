"""The Training step's Start while another launch holds the run's folder: it says it waits, as `dbtui run` does."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Label, Log

import engine.runs.launcher
from dbtui.app import make_app
from dbtui.engine_facade import RealEngine
from dbtui.session import Session
from engine.runs.folder import RunFolder, run_dir_for
from engine.runs.launch_lock import launching
from wizard_steps import settle, until

SIZE = (80, 24)


class _Checked(Exception):
    """Where the launch, its lock had, would check its images: the test ends the start there, no trainer started."""


async def test_a_start_waiting_for_another_launch_says_so(tmp_path: Path, monkeypatch) -> None:
    """The wizard's Start passed the launcher no ``waiting``: behind another launch's image checks (minutes at most) it
    showed "starting" and nothing else, read as a hang, where `dbtui run` says it waits."""
    monkeypatch.chdir(tmp_path)

    def checked(*args, **kwargs) -> None:
        raise _Checked("the test's end of the launch")

    monkeypatch.setattr(engine.runs.launcher, "check_inputs", checked)
    session = Session.for_demo(str(tmp_path / "runs"))
    folder = run_dir_for(session.profile())
    app = make_app(RealEngine(), session, image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        with launching(RunFolder(folder)):  # the other launch, checking its images
            app.goto(4)
            screen = app.screen
            await until(pilot, lambda: any(n.title == "Waiting" for n in app._notifications))
            [notice] = [n.message for n in app._notifications if n.title == "Waiting"]
            assert notice.startswith(f"Waiting for another launch into {folder} ") and "(at most 10 min)" in notice
            assert str(screen.query_one("#tr-phase", Label).render()) == "waiting for another launch"
            assert notice.replace(" ", "") in _logged(screen)
        await settle(pilot)  # the other launch done, this one goes on to its checks, where the test ends it
        assert "Notstarted:thetest'sendofthelaunch" in _logged(screen)


def _logged(screen) -> str:
    """The log's text without its spaces: its lines wrap at 80 columns, in the middle of a long path."""
    return "".join(screen.query_one(Log).lines).replace(" ", "")
