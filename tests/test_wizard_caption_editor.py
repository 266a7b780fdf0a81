"""The caption editor at 80x24 as a user meets it: the tag list's line, and Enter in the tag field."""

from __future__ import annotations

from pathlib import Path

from textual.geometry import Region
from textual.widgets import Input, Static

from dbtui.app import make_app
from dbtui.session import Session
from test_wizard_captions import SIZE, RealCaptionsEngine, _captions, _images
from wizard_steps import settle, until


def _shown(widget) -> list[str]:
    """The rows of ``widget`` as the terminal shows them."""
    return [strip.text.rstrip() for strip in widget.render_lines(Region(0, 0, *widget.outer_size))]


async def test_a_tag_list_wider_than_the_screen_ends_in_an_ellipsis_not_mid_tag(tmp_path: Path, demo_data: Path) -> None:
    """At 80 columns the Tags: line was cut at the edge, 'sunny' shown and 'weather ×6' not: a tag that looked
    whole, and no sign that more followed."""
    images = _images(tmp_path, demo_data)
    tags = ["zwx disc", "outdoors", "sunny weather", "wooden table", "studio lighting", "close-up shot", "blue sky"]
    for picture in images.glob("*.png"):
        picture.with_suffix(".txt").write_text(", ".join(tags))
    app = make_app(RealCaptionsEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await _captions(app, pilot, images)
        line = screen.query_one("#cap-tags", Static)
        full = str(line.render())
        assert len(full) > line.size.width  # the list is longer than the line
        rows = _shown(line)
        assert len(rows) == 1 and rows[0].endswith("…"), rows
        assert full.startswith(rows[0].strip()[:-1]), rows  # the tags in their order, as far as they fit


async def test_enter_in_the_tag_field_adds_the_tag_and_its_placeholder_says_so(tmp_path: Path, demo_data: Path) -> None:
    """Typing a tag and pressing Enter did nothing: the user had to find the Add tag button."""
    images = _images(tmp_path, demo_data)
    app = make_app(RealCaptionsEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await _captions(app, pilot, images)
        field = screen.query_one("#cap-tag", Input)
        assert "Enter" in field.placeholder
        await pilot.click("#cap-tag")
        await pilot.press(*"sks", "enter")
        await settle(pilot)
        assert screen.job is None
        assert all("sks" in picture.with_suffix(".txt").read_text() for picture in images.glob("*.png"))
        assert "sks ×" in str(screen.query_one("#cap-tags", Static).render())


async def _closed_after(tmp_path: Path, demo_data: Path, keys: tuple[str, ...]) -> str:
    """The screen Esc leads to from the captions of the demo's concept (trained with its instance prompt), once the
    first caption is edited and ``keys`` are pressed in the editor."""
    images = _images(tmp_path, demo_data)
    session = Session.for_demo()
    session.set("concepts.0.instance_dir", str(images))
    app = make_app(RealCaptionsEngine(), session, image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await _captions(app, pilot, images, concept=0)
        screen.query_one("#cap-text").text = "zwx disc, a new word"
        await pilot.press(*keys, "escape")
        await settle(pilot)
        return type(app.screen).__name__


async def test_a_caption_saved_then_reverted_does_not_ask_to_train_with_edited_captions(
        tmp_path: Path, demo_data: Path) -> None:
    """Saved, then put back with F2, every caption was as before; Esc still asked "Train with the captions you
    edited?"."""
    assert await _closed_after(tmp_path / "reverted", demo_data, ("ctrl+s", "f2")) != "CaptionModeScreen"
    assert await _closed_after(tmp_path / "saved", demo_data, ("ctrl+s",)) == "CaptionModeScreen"


async def test_a_bulk_edit_undone_does_not_ask_to_train_with_edited_captions(tmp_path: Path, demo_data: Path) -> None:
    """A tag added by mistake (Enter in the tag field), then undone with Ctrl+R: every caption as before, byte for
    byte, yet Esc asked "Train with the captions you edited?" and dropped the folder's findings."""
    images = _images(tmp_path, demo_data)
    found = {caption: caption.read_bytes() for caption in images.glob("*.txt")}
    session = Session.for_demo()
    session.set("concepts.0.instance_dir", str(images))
    session.reports[0] = "the folder's findings"
    app = make_app(RealCaptionsEngine(), session, image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await _captions(app, pilot, images, concept=0)
        await pilot.click("#cap-tag")
        await pilot.press(*"sks", "enter")
        await until(pilot, lambda: screen.job is None and all(b"sks" in caption.read_bytes() for caption in found))
        await pilot.press("ctrl+r")
        await until(pilot, lambda: screen.job is None and b"sks" not in b"".join(map(Path.read_bytes, found)))
        assert {caption: caption.read_bytes() for caption in images.glob("*.txt")} == found
        await pilot.press("escape")
        await settle(pilot)
        assert type(app.screen).__name__ != "CaptionModeScreen"
    assert session.reports == {0: "the folder's findings"}
