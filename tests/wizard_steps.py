"""Moving through the wizard in Pilot tests: to a step, and waiting for its workers."""

from __future__ import annotations

from textual.worker import WorkerCancelled


async def settle(pilot, seconds: float = 0.1) -> None:
    """Every worker done. A prepare starts a check and a token check that replace (cancel) their group's
    running worker, and waiting on a cancelled worker raises: wait again for those left."""
    while True:
        try:
            await pilot.app.workers.wait_for_complete()
            break
        except WorkerCancelled:
            continue
    await pilot.pause(seconds)


async def at_step(app, pilot, index: int, name: str):
    """The wizard's step ``index`` (a ``name`` screen), shown and settled."""
    app.goto(index)
    await settle(pilot)
    assert type(app.screen).__name__ == name
    return app.screen
