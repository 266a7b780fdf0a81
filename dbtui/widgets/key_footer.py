"""The key bar at the foot of every screen."""

from __future__ import annotations

from textual.widgets import Footer


class KeyFooter(Footer):
    """Textual's footer in its compact style: at 80 columns every screen's labels fit whole.

    Each screen keeps its footer to the everyday keys; the others stay in the Ctrl+P palette
    and in the F1 help (``show=False`` on their bindings).
    """

    def __init__(self) -> None:
        super().__init__(compact=True)
