"""One line with the memory meter's estimate for the settings in the form, kept current as they change.

An estimate takes the meter half a minute of CPU in a child process (the wizard never imports
torch), and settings change with every key typed. So a request waits ``delay`` seconds after the
last change before it starts; a newer request ends the child of an older one; and an answer is
shown only if the form still holds the settings it was made for. Answers are kept by the meter's
key (engine/memory/inputs.py): going back to earlier settings shows theirs at once. A failed estimate
is never made again on its own, and an edit the meter's key leaves out (the run's name, its steps)
does not always make it again either: the child's own word on why it cannot estimate (a model it
cannot read) comes back for the same settings, so it is asked again only when the settings change to
them or the fit test asks; a child that was ended (the OOM killer) or crashed may pass next time, so
it is tried again at a request, at most once every ``RETRY_S`` seconds: else each pause in typing
would start another child that fills the memory again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from textual import work
from textual.content import Content
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Static
from textual.worker import get_current_worker

from engine.memory.estimate import CARD_SIZES_GB, MemoryEstimate, gb_beside
from engine.memory.inputs import meter_key
from engine.memory.process import MeterProcessError

if TYPE_CHECKING:
    from engine.profile import Profile

# (profile, stop) -> the estimate, or None when stop() turned true first: Engine.estimate_memory.
Estimator = Callable[[Any, Callable[[], bool]], MemoryEstimate | None]
DEBOUNCE_S = 1.5
RETRY_S = 60.0  # how soon settings whose child was ended or crashed are estimated again at a request
GUESSED = "(model not here: architecture guessed from its name)"
ESTIMATING = "VRAM ≈ [i]estimating…[/i] (the memory meter: no GPU needed)"


def card_line(estimate: MemoryEstimate, hint: str = "") -> str:
    """``VRAM ≈ 9.4 GB on the card · fits 8 GB ✗ · 12 GB ✓ · 16 GB ✓ · 24 GB ✓``: the run's largest moment
    (the step, the caching pass or a preview), as the verdicts judge it; ``hint`` after the figure, and a caveat where
    the model is not on this machine and its architecture was guessed from its name."""
    said = " ".join(part for part in (hint, GUESSED if estimate.guessed_architecture else "") if part)
    return f"VRAM ≈ {gb_beside(estimate.run_need, CARD_SIZES_GB)} GB on the card{f' {said}' if said else ''} · {estimate.fit_line()}"


ROWS = 4  # the line's max-height
CUT = "… (cut: the fit test, ^f, shows it whole, as does hovering here)"


def failure_line(reason: str, width: int = 0) -> Content:
    """Why the settings were not estimated, cut to the line's rows at ``width`` columns (0: whole): past them it was
    cut off with no sign (a traceback's last word, a long path), and with it the advice at its end. The cut is at a
    word unless that leaves a row unused: a long path (no spaces) cut at a word showed none of itself."""
    def line(chars: int | None) -> Content:  # the meter's words as they are: escaped into markup, "[$x]" vanished
        return Content(f"VRAM: not estimated: {reason[:chars]}{'' if chars is None else CUT}")

    def fits(text: Content) -> bool:
        return width <= 0 or len(text.wrap(width)) <= ROWS

    if fits(line(None)):
        return line(None)
    low, high = 0, len(reason)  # the most characters that fit with CUT: line(low) fits, line(high) does not
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if fits(line(middle)) else (low, middle)
    word = reason.rfind(" ", 0, low + 1)
    return line(word if word > max(0, low - width) and fits(line(word)) else low)


class VramLine(Static):
    # Four rows: a failure's advice (the command to run, what to give) comes last and took a third row at 80 columns.
    DEFAULT_CSS = f"VramLine {{ height: auto; max-height: {ROWS}; padding: 0 1; }}"

    @dataclass
    class Estimated(Message):
        """An estimate arrived (also for settings no longer in the form)."""

        key: str  # engine.memory.inputs.meter_key of the settings it was made for
        estimate: MemoryEstimate

    @dataclass
    class Failed(Message):
        key: str
        reason: str
        recurs: bool = False  # the child's own word: the same settings fail again (MeterProcessError.recurs)

    clock = staticmethod(time.monotonic)  # the back-off's clock (a test's own, to be load-proof)

    def __init__(self, estimate: Estimator, *, delay: float = DEBOUNCE_S, id: str | None = None) -> None:
        super().__init__("", id=id)
        self._estimate = estimate
        self.delay = delay
        self.key: str | None = None  # the settings shown, or being estimated; None while the form has problems
        self._known: dict[str, MemoryEstimate] = {}
        self.failures: dict[str, str] = {}  # why settings were not estimated (until they are tried again)
        self.retry_s = RETRY_S
        # When settings failed (self.clock); None: the child's own word, asked again only as they come back or now.
        self._failed_at: dict[str, float | None] = {}
        self._timer: Timer | None = None
        self._pending: Profile | None = None  # waiting for the timer
        self._hint = ""  # said after the figure shown

    @property
    def waiting(self) -> bool:
        """Whether a request waits for the settings to rest (``delay``) before its estimate starts."""
        return self._pending is not None

    def known(self, key: str) -> MemoryEstimate | None:
        return self._known.get(key)

    def request(self, profile: Profile | None, *, now: bool = False, hint: str = "") -> None:
        """Estimate ``profile`` once the settings rest for ``delay`` seconds, or ``now``; None: the form has problems.
        ``hint``: said after its figure (how this machine trains the settings the form holds)."""
        key = None if profile is None else meter_key(profile)
        if hint != self._hint:
            self._hint = hint
            if key is not None and key == self.key and key in self._known:  # the same settings, reached otherwise
                self.update(card_line(self._known[key], hint))
        if key is not None and key in self.failures and not now and not self._may_retry(key):
            if key != self.key:
                self._stop()
                self.key = key
                self._show_failure(self.failures[key])
            return
        if key is not None and key == self.key and key not in self.failures:
            if now and self._pending is not None:
                self._start(self._pending, key)
            return  # shown, waiting or under way already
        self._stop()
        self.key = key
        if key is not None:
            self.failures.pop(key, None)
        if profile is None or key is None:
            self.update("VRAM: estimated once the problems below are fixed")
        elif key in self._known:
            self.update(card_line(self._known[key], hint))
        elif now:
            self.update(ESTIMATING)
            self._start(profile, key)
        else:
            self.update(ESTIMATING)
            self._pending = profile
            self._timer = self.set_timer(self.delay, lambda: self._start(profile, key))

    def _may_retry(self, key: str) -> bool:
        """Whether failed settings, requested again, are tried again: the child's own word as the settings come back
        to them from others; a child that was ended or crashed once its back-off is over."""
        failed_at = self._failed_at.get(key)
        return key != self.key if failed_at is None else self.clock() - failed_at >= self.retry_s

    def _stop(self) -> None:
        """Forget the waiting request and end the running one."""
        if self._timer is not None:
            self._timer.stop()
        self._timer, self._pending = None, None
        self.workers.cancel_group(self, "meter")

    def _start(self, profile: Profile, key: str) -> None:
        if self._timer is not None:
            self._timer.stop()
        self._timer, self._pending = None, None
        self._measure(profile, key)

    @work(thread=True, exclusive=True, exit_on_error=False, group="meter")
    def _measure(self, profile: Profile, key: str) -> None:
        worker = get_current_worker()
        try:
            estimate = self._estimate(profile, lambda: worker.is_cancelled)
        except Exception as error:  # noqa: BLE001 - shown in the line: a model whose configs cannot be read, a bug
            self.post_message(self.Failed(key, str(error), isinstance(error, MeterProcessError) and error.recurs))
            return
        if estimate is not None:
            self.post_message(self.Estimated(key, estimate))

    def on_vram_line_estimated(self, message: Estimated) -> None:
        self._known[message.key] = message.estimate
        if message.key == self.key:
            self.update(card_line(message.estimate, self._hint))

    def on_vram_line_failed(self, message: Failed) -> None:
        self.failures[message.key] = message.reason
        self._failed_at[message.key] = None if message.recurs else self.clock()
        if message.key == self.key:
            self._show_failure(message.reason)

    def _show_failure(self, reason: str) -> None:
        shown = failure_line(reason, self.content_size.width)
        self.update(shown)
        self.tooltip = Content(reason) if shown.plain.endswith(CUT) else None  # plain: a path's "[beta]" is no style

    def update(self, content: Any = "", *, layout: bool = True) -> None:
        self.tooltip = None  # a cut failure's whole reason, shown no longer
        super().update(content, layout=layout)

    def on_resize(self) -> None:
        if self.key is not None and self.key in self.failures:  # cut to the new width
            self._show_failure(self.failures[self.key])
