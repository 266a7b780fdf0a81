"""The Model step's conversion bar shows while a file converts only: shown beside Convert from the check on, it ran its
pulsing "working" animation over a file that nothing was converting, and after a conversion had failed."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Input

from test_model_import import _checked, _converting, _file, _finish, conversions  # noqa: F401  (conversions: the fixture)
from test_wizard_sdxl import visible
from wizard_steps import until
from test_model_import import ConvertingEngine


async def test_the_bar_shows_while_a_file_converts_only(conversions: list[Path]) -> None:
    source = _file(Path("a"))
    async with _checked(ConvertingEngine(), source) as pilot:
        assert visible(pilot.app.screen, "#model-convert") and not visible(pilot.app.screen, "#model-progress")

    async with _converting(source, fail=True) as (pilot, engine):
        screen = pilot.app.screen
        assert visible(screen, "#model-progress")
        await _finish(pilot, engine)
        await until(pilot, lambda: "✗" in str(screen.query_one("#model-family").render()))
        assert visible(screen, "#model-convert") and not visible(screen, "#model-progress")


async def test_the_bar_of_a_file_converting_is_not_shown_beside_another_files_convert(conversions: list[Path]) -> None:
    """Another file checked while one converted: its Convert, which nothing had pressed, showed the first file's bar."""
    first, second = _file(Path("a")), _file(Path("b"), b"other weights")
    async with _converting(first) as (pilot, engine):
        app, screen = pilot.app, pilot.app.screen
        screen.query_one("#model-source", Input).focus()
        await _typed(pilot, second)
        await until(pilot, lambda: getattr(app.session.model_info, "source", None) == second)
        assert visible(screen, "#model-convert") and not visible(screen, "#model-progress")
        await _typed(pilot, first)  # the file converting shown again: its bar with it
        await until(pilot, lambda: getattr(app.session.model_info, "source", None) == first)
        assert visible(screen, "#model-progress")
        await _finish(pilot, engine)


async def _typed(pilot, source: str) -> None:
    """``source`` typed and checked without settle's wait for every worker: the conversion's goes on until _finish."""
    await pilot.press("end", "ctrl+u", *source, "enter")
