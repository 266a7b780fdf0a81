"""A run whose trainer is paused: stopped by a signal (Ctrl-Z of a foreground `dbtui run`, `kill -STOP`), alive and
holding its run, so "running" by its state file and lock, yet training nothing. Said where a run is shown as running."""

from __future__ import annotations

import time
from collections.abc import Callable

from engine.events import Event, Warning
from engine.runs.folder import ACTIVE, RunFolder
from engine.runs.trainer_process import stopped_by_signal, trainer_alive

PAUSED = "paused"  # the word `dbtui runs` shows for a running run whose trainer is paused


def paused_trainer(folder: RunFolder) -> int | None:
    """The pid of the run's trainer where its state says it runs and that process is stopped by a signal; else None
    (and where this machine cannot tell: no /proc, or the trainer runs elsewhere, in a container say)."""
    state = folder.read_state()
    if state is None or state.status not in ACTIVE or not stopped_by_signal(state.pid):
        return None
    return state.pid if trainer_alive(state.pid, folder.path) else None


def paused_words(pid: int, request: str | None = None) -> str:
    """What a paused trainer means and what continues it; ``request``: the one just asked of it (stop, save, sample),
    which it leaves until then."""
    asked = f"the {request} just asked of it" if request else "a stop, save or sample asked of it"
    return (f"its trainer (pid {pid}) is paused, stopped by a signal (Ctrl-Z, or kill -STOP): it trains nothing, nor "
            f"acts on {asked}, until `kill -CONT {pid}` (or `fg` in the terminal it runs in) continues it")


class PauseNotice:
    """Polled as a run is followed (its events' ``stop``): once its trainer is found paused, a warning to ``say``;
    again if it is paused once more after it went on. /proc is read at most every ``every`` seconds."""

    def __init__(self, folder: RunFolder, say: Callable[[Event], object], every: float = 2.0):
        self.folder = folder
        self.say = say
        self.every = every
        self._next = 0.0
        self._said = False

    def __call__(self) -> None:
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self.every
        pid = paused_trainer(self.folder)
        if pid is not None and not self._said:
            self.say(Warning(message=f"the run is not training: {paused_words(pid)}"))
        self._said = pid is not None
