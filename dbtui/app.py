"""The Textual app factory, shared by the CLI and the tests."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.widgets import Footer, Header, Static


class DbtuiApp(App):
    TITLE = "dbtui"
    SUB_TITLE = "DreamBooth for Stable Diffusion"
    BINDINGS = [("q", "quit", "Quit")]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("Welcome to dbtui. The wizard's screens are coming; try `dbtui demo` meanwhile.", id="welcome")
        yield Footer()


def make_app() -> DbtuiApp:
    return DbtuiApp()
