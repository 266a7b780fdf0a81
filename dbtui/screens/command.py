"""The equivalent command line for the profile, to run it headless (nohup, tmux, CI)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Literal

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static

from dbtui.session import Session
from dbtui.widgets.key_footer import KeyFooter
from engine.profile import Profile, ProfileError, dumps_profile


def holds(path: Path, profile: Profile) -> bool:
    """Whether the file at ``path`` is ``profile``: one saved before and edited since is not, and its commands would
    run the settings saved, not those shown."""
    try:
        return Session.from_file(path).profile() == profile
    except (ProfileError, OSError):
        return False


class CommandScreen(ModalScreen[Literal["save"] | None]):
    """Returns "save" where Ctrl+S asks Parameters to save the profile, which the note of an unsaved one offers."""

    HELP = """\
## The same run without the wizard

The commands that run this profile headless: over SSH with nohup or tmux, or in CI.
`dbtui run` trains; `dbtui fit` measures first. Below them, the profile as it will be
saved. Save it first (^s, here or on Parameters): the commands read the file.
"""
    CSS_PATH = "command.tcss"
    BINDINGS = [
        Binding("escape,enter", "dismiss(None)", "Close"),
        Binding("ctrl+s", "dismiss('save')", "Save profile"),
    ]

    def __init__(self, profile: Profile, path: Path, *, saved: bool) -> None:
        super().__init__()
        self.profile = profile
        self.path = path
        self.saved = saved

    def compose(self) -> ComposeResult:
        # The path is a value, not markup: escaped, "[$x]" in it vanished as a variable.
        path = shlex.quote(str(self.path))
        note = "" if self.saved else "[yellow]Not saved yet: Ctrl+S writes $path first.[/]\n"
        with VerticalScroll(id="cmd-box"):
            yield Static("[b]The same run without the wizard[/b]")
            yield Static(Content.from_markup(f"{note}\n  dbtui run $path\n  dbtui fit $path --price-per-hour 0.79\n"
                                             "  nohup dbtui run $path > run.log 2>&1 &\n", path=path), id="cmd-lines")
            yield Static(Content.from_markup("[dim]$path:[/dim]", path=path))
            yield Static(dumps_profile(self.profile), id="cmd-toml", markup=False)
        yield KeyFooter()
