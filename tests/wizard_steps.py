"""Moving through the wizard in Pilot tests: to a step, and waiting for its workers."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator

from textual.worker import WorkerCancelled, WorkerState

from dbtui.widgets.vram_line import VramLine


SETTLE_S = 30.0  # how long workers that keep starting others may go on: only a failing test waits it out


async def settle(pilot, seconds: float = 0.1) -> None:
    """Every worker done, and the messages they posted handled, until those start no other: a screen's start worker
    posts what starts its follow worker. A fixed pause after the first ones was the only wait for the next, and a
    loaded machine's threads outran it. A prepare starts a check and a token check that replace (cancel) their
    group's running worker, and waiting on a cancelled worker raises: wait again for those left."""
    app = pilot.app
    deadline = time.monotonic() + SETTLE_S
    while True:
        await pilot.pause()  # a screen just pushed mounts, and starts its workers
        try:
            await app.workers.wait_for_complete()
        except WorkerCancelled:
            continue
        await pilot.pause()  # what they posted is handled: a handler may start another
        if not any(worker.state in (WorkerState.PENDING, WorkerState.RUNNING) for worker in app.workers):
            break
        assert time.monotonic() < deadline, "workers still running"
    await pilot.pause(seconds)


async def until(pilot, done, seconds: float = SETTLE_S) -> None:
    """Wait for ``done()``: what a timer or a held worker brings about, which no fixed pause waits for on a loaded
    machine. ``seconds`` bounds only a failing test's wait."""
    end = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < end, "timed out"
        await pilot.pause(0.05)


@contextlib.asynccontextmanager
async def vram_estimated(pilot, requests: int = 1) -> AsyncIterator[None]:
    """The changes made within reach the VRAM line (``requests`` of them, through the form's messages), its waiting
    request starts and every worker is done: a fixed pause raced the line's timer, which a loaded machine fires late."""
    line = pilot.app.screen.query_one(VramLine)
    asked: list[tuple] = []
    request = line.request
    line.request = lambda *args, **kwargs: (asked.append(args), request(*args, **kwargs))[1]
    try:
        yield
        await until(pilot, lambda: len(asked) >= requests and not line.waiting)
    finally:
        del line.request
    await settle(pilot, 0)


async def at_step(app, pilot, index: int, name: str):
    """The wizard's step ``index`` (a ``name`` screen), shown and settled."""
    app.goto(index)
    await settle(pilot)
    assert type(app.screen).__name__ == name
    return app.screen


async def resume_from_the_dashboard(app, pilot) -> None:
    """From a run's dashboard, as its hint says: Esc to Parameters, Ctrl+N to the resume screen, r to resume."""
    await pilot.press("escape")
    await settle(pilot, 0.3)
    await pilot.press("ctrl+n")
    await settle(pilot, 0.3)
    assert type(app.screen).__name__ == "ResumeScreen"
    await pilot.press("r")
    await settle(pilot, 0.3)


async def back_from_a_live_run(app, pilot) -> None:
    """Train the draft, whose run the fake engine keeps training, then Esc back to Parameters while it trains."""
    app.goto(4)
    await settle(pilot, 0.2)
    assert not app.screen.finished
    await pilot.press("escape")
    await settle(pilot, 0.2)


@contextlib.asynccontextmanager
async def held_probe_wizard(engine, size: tuple[int, int] = (80, 24)) -> AsyncIterator:
    """The wizard on ``engine`` (a ``HeldProbe``), its probe let answer however the test ends: a probe still held
    would keep its worker, and the app, waiting."""
    from dbtui.app import make_app
    from dbtui.session import Session

    app = make_app(engine, Session(), image_renderer="none")
    async with app.run_test(size=size) as pilot:
        try:
            yield pilot
        finally:
            engine.answer.set()
        await settle(pilot)


async def parameters_before_the_probe(pilot, engine, key: str, **settings: object) -> None:
    """From the start screen's ``key`` (``n`` a new profile, ``d`` the demo) to Parameters by Next before the hardware
    probe answered, with ``settings`` (dotted keys, ``__`` for ``.``) set on the way."""
    from dbtui.session import STEPS

    await pilot.press(key)
    await until(pilot, lambda: engine.probes == 1)
    for key_path, value in settings.items():
        pilot.app.session.set(key_path.replace("__", "."), value)
    pilot.app.goto(STEPS.index("parameters"))


async def parameters_from_an_attached_run(pilot, **settings: object) -> None:
    """As Esc from an attached run's dashboard: the start screen hands on the demo's session at Parameters, with no
    hardware step and so no probe answer yet."""
    from dbtui.session import STEPS, Session

    await pilot.pause()
    session = Session.for_demo()
    for key_path, value in settings.items():
        session.set(key_path.replace("__", "."), value)
    session.step = STEPS.index("parameters")
    pilot.app.screen.dismiss(session)


def fit_result(screen) -> str:
    """The Parameters step's fit test result as plain lines, unwrapped: it is a Rich group (each line indented as a
    block), which the str() of a Static's render does not read."""
    import io

    from rich.console import Console
    from textual.widgets import Static

    console = Console(width=10_000, file=io.StringIO(), color_system=None)
    with console.capture() as captured:
        console.print(screen.query_one("#par-fit-result", Static).content)
    return "\n".join(line.rstrip() for line in captured.get().splitlines())
