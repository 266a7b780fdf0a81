"""A Flux transformer file checked on the Model step at 80x24: the parts it asks for and Convert are in view. They
scrolled below the fold (T5 and Convert), with nothing but a thin scroll bar to say there was more."""

from __future__ import annotations

from pathlib import Path

import pytest

from dbtui.widgets import flux_parts
from test_model_import import FluxConvertingEngine, _checked, _file, conversions  # noqa: F401 - a fixture
from wizard_steps import settle

PARTS = ("#model-components", "#model-vae", "#model-clip-l", "#model-t5", "#model-convert")


async def test_a_flux_files_parts_and_convert_show_without_scrolling(conversions: list[Path]) -> None:
    async with _checked(FluxConvertingEngine(), _file(Path("a"))) as pilot:
        screen = pilot.app.screen
        body = screen.query_one("StepBody")
        assert body.scroll_y == 0
        for part in PARTS:
            widget = screen.query_one(part)
            assert widget.display and body.region.contains_region(widget.region), (part, widget.region, body.region)


async def test_into_is_spaced_from_its_field_as_the_part_labels_are(conversions: list[Path]) -> None:
    """At 80x24 Into's field began one cell after the word ("Into the diffusers folder to write" read as one line),
    where the part labels above it keep two or more and line their fields up."""
    async with _checked(FluxConvertingEngine(), _file(Path("a"))) as pilot:
        screen = pilot.app.screen
        label, field = screen.query_one("#model-convert-to-label"), screen.query_one("#model-convert-to")
        assert label.region.x + len("Into") + 2 <= field.region.x, (label.region, field.region)
        for part in PARTS[:-1]:
            assert screen.query_one(part).region.x == field.region.x, (part, field.region)


async def test_the_parts_and_convert_show_whatever_the_helps_length(conversions: list[Path],
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """They were in view at 80x24 only because the help above them wraps to three rows: a longer one (another
    wording, or a translation) put T5 and Convert below the fold again."""
    monkeypatch.setattr(flux_parts, "FLUX_PARTS_HELP", " ".join([flux_parts.FLUX_PARTS_HELP] * 3))
    async with _checked(FluxConvertingEngine(), _file(Path("a"))) as pilot:
        await settle(pilot, 0.3)
        screen = pilot.app.screen
        body = screen.query_one("StepBody")
        assert screen.query_one("#model-flux-parts .help").region.height > 3
        for part in PARTS:
            widget = screen.query_one(part)
            assert body.region.contains_region(widget.region), (part, widget.region, body.region)
