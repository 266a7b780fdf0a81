"""Widgets built in the state they show, and the footer's keys built again only when they change: Textual restyles a
widget and its children for each class it gains once mounted, and a footer rebuilt at every focus change restyled and
laid out the step again (a tenth of the Parameters step's CPU, keystroke after keystroke on a slow SSH box)."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Button
from textual.widgets._footer import FooterKey

from dbtui.session import Session
from dbtui.widgets.key_footer import KeyFooter
from dbtui.widgets.profile_form import ProfileForm, Section
from wizard_steps import settle


class _Keys(Screen):
    BINDINGS = [Binding("ctrl+s", "save", "Save"), Binding("ctrl+f", "fit", "Fit test")]
    fits = True

    def compose(self) -> ComposeResult:
        yield Button("one", id="one")
        yield Button("two", id="two")
        yield ProfileForm(Session())
        yield KeyFooter()

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        return None if action == "fit" and not self.fits else True


class _Restyles(App):
    """Records every node Textual restyles."""

    def __init__(self) -> None:
        super().__init__()
        self.restyled: list[object] = []

    def on_mount(self) -> None:
        self.push_screen(_Keys())

    def update_styles(self, node, animate: bool = True) -> None:
        self.restyled.append(node)
        super().update_styles(node, animate)


def _keys(app: App) -> list[FooterKey]:
    return list(app.screen.query(FooterKey))


async def test_a_focus_change_that_leaves_the_keys_as_they_were_keeps_the_footer() -> None:
    app = _Restyles()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        keys = _keys(app)
        assert [key.description for key in keys] == ["Save", "Fit test", "palette"]
        for _ in range(3):
            await pilot.press("tab")
            await settle(pilot)
            assert _keys(app) == keys  # the same widgets: nothing rebuilt


async def test_the_footer_follows_a_binding_that_changes_and_restyles_no_key_it_builds() -> None:
    app = _Restyles()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.screen.fits = False
        app.screen.refresh_bindings()
        await settle(pilot)
        fit = next(key for key in _keys(app) if key.description == "Fit test")
        assert fit.has_class("-disabled")
        assert all(key.has_class("-compact") for key in _keys(app))
        assert not [node for node in app.restyled if isinstance(node, FooterKey)]


async def test_a_folded_section_mounts_folded_without_a_restyle() -> None:
    app = _Restyles()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        sections = list(app.screen.query(Section))
        assert sections and all(section.collapsed and section.has_class("-collapsed") for section in sections)
        assert not [node for node in app.restyled if isinstance(node, Section)]
