"""A wizard step's scrolling body: the focus passes through it to what it holds, never stops on it."""

from __future__ import annotations

from textual.containers import VerticalScroll


class StepBody(VerticalScroll, can_focus=False):
    """Not a focus stop of its own: it shows no focus, so Tab or Shift+Tab landing on it seemed to do nothing. The
    focused widget inside scrolls into view, and the scroll keys (PageDown, arrows) reach the body from there."""

    DEFAULT_CLASSES = "body"
