"""A new profile's Dataset step over a folder with a caption per image: the concept trains with its instance prompt
(the caption mode a concept starts with) and nothing there said that its captions would not be used."""

from __future__ import annotations

from pathlib import Path

from PIL import Image
from textual.widgets import Button, Input, Static

from dbtui.app import make_app
from dbtui.session import Session
from wizard_fakes import FakeEngine
from wizard_steps import at_step, settle

SIZE = (80, 24)


def _said(screen) -> str:
    line = screen.query_one("#ds-caption-use")
    return str(screen.query_one("#ds-caption-said", Static).render()) if line.display else ""


def _captioned(folder: Path, count: int, captions: bool = True) -> None:
    """``count`` small pictures in ``folder``, each with its .txt caption unless ``captions`` is False."""
    for i in range(count):
        Image.new("RGB", (64, 64), (40 * i, 90, 200)).save(folder / f"{i}.png")
        if captions:
            (folder / f"{i}.txt").write_text(f"zwx dog, view {i}\n")


async def test_the_dataset_step_says_the_captions_training_ignores_and_switches_to_them(tmp_path: Path) -> None:
    captioned, bare = tmp_path / "captioned", tmp_path / "bare"
    for folder in (captioned, bare):
        folder.mkdir()
    _captioned(captioned, 5)
    _captioned(bare, 5, captions=False)
    app = make_app(FakeEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await at_step(app, pilot, 2, "DatasetScreen")
        screen.query_one("#ds-instance_dir", Input).value = str(captioned)
        await settle(pilot)
        assert _said(screen) == "5 of 5 images have a .txt caption that training ignores: it uses the instance prompt alone."
        assert screen.query_one("#ds-caption-mode", Button).display
        screen.query_one("#ds-caption-mode", Button).press()
        await settle(pilot)
        assert type(app.screen).__name__ == "CaptionModeScreen"
        await pilot.press("c")
        await settle(pilot)
        assert app.session.get("concepts.0.caption_mode") == "caption_file_then_prompt"
        assert _said(screen) == "Training reads the 5 .txt caption(s): caption mode caption file then prompt."
        assert not screen.query_one("#ds-caption-mode", Button).display
        screen.query_one("#ds-instance_dir", Input).value = str(bare)
        await settle(pilot)
        assert _said(screen) == ""  # no caption files: nothing to say


async def test_the_offer_under_the_file_name_mode_says_that_mode(tmp_path: Path) -> None:
    """Under caption_mode = "file_name" the line said 'it uses each file's name' and its 'Use them…' opened a choice
    that said 'This concept's caption mode is the instance prompt', a mode the concept did not have."""
    _captioned(tmp_path, 2)
    app = make_app(FakeEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await at_step(app, pilot, 2, "DatasetScreen")
        app.session.set("concepts.0.caption_mode", "file_name")
        screen.query_one("#ds-instance_dir", Input).value = str(tmp_path)
        await settle(pilot)
        assert _said(screen) == "2 of 2 images have a .txt caption that training ignores: it uses each file's name."
        screen.query_one("#ds-caption-mode", Button).press()
        await settle(pilot)
        said = " ".join(str(s.render()) for s in app.screen.query(Static))
        assert "caption mode is the instance prompt" not in said and "each file's name" in said


async def test_the_focus_on_use_them_comes_back_after_caption_review(tmp_path: Path) -> None:
    """With "Use them…" focused, Ctrl+O then Esc came back to the dataset step with nothing focused: the line was
    hidden while its folder was counted again, which took the focus from its button."""
    _captioned(tmp_path, 2)
    app = make_app(FakeEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await at_step(app, pilot, 2, "DatasetScreen")
        screen.query_one("#ds-instance_dir", Input).value = str(tmp_path)
        await settle(pilot)
        button = screen.query_one("#ds-caption-mode", Button)
        button.focus()
        await pilot.press("ctrl+o")
        await settle(pilot)
        assert type(app.screen).__name__ == "CaptionScreen"
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is screen and app.focused is button
