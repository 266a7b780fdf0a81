"""`dbtui fit`'s wait for the memory meter (dbtui/cli/meter_status.py): on a terminal a live line names the part under way
and goes when the estimate is made; in a log or a pipe, nothing is added."""

from __future__ import annotations

import io

import pytest

from dbtui.cli.meter_status import meter_status


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _stderr(monkeypatch: pytest.MonkeyPatch, screen: io.StringIO, term: str = "xterm-256color", ci: bool = False) -> None:
    """Set in the test itself: pytest's capture puts its own stderr back between a fixture's set-up and the test."""
    monkeypatch.setattr("sys.stderr", screen)
    monkeypatch.setenv("TERM", term)
    if ci:
        monkeypatch.setenv("CI", "true")
    else:
        monkeypatch.delenv("CI", raising=False)


def test_on_a_terminal_the_part_under_way_is_shown_then_taken_away(monkeypatch: pytest.MonkeyPatch) -> None:
    screen = _Terminal()
    _stderr(monkeypatch, screen)
    with meter_status("memory estimate") as measuring:
        assert measuring is not None
        measuring("the previews")
        shown = screen.getvalue()
    assert "memory estimate: the previews …" in shown
    assert "\x1b[2K" in screen.getvalue()[len(shown):]  # the line erased as the estimate is made


@pytest.mark.parametrize("place", ["a log", "CI", "a dumb terminal"])
def test_elsewhere_nothing_is_added(place: str, monkeypatch: pytest.MonkeyPatch) -> None:
    screen = io.StringIO() if place == "a log" else _Terminal()
    _stderr(monkeypatch, screen, term="dumb" if place == "a dumb terminal" else "xterm-256color", ci=place == "CI")
    with meter_status("memory estimate") as measuring:
        assert measuring is None
    assert screen.getvalue() == ""
