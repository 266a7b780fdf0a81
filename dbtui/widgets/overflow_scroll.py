"""A scrolling panel that is a focus stop only while it holds more than it shows."""

from __future__ import annotations

from textual.containers import VerticalScroll


class OverflowScroll(VerticalScroll):
    """Tab reaches it while its content is taller than it, to read the rest with the arrow keys; when all of it shows,
    a stop there would be one where no key does anything."""

    def allow_focus(self) -> bool:
        return self.max_scroll_y > 0
