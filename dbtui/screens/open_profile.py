"""Pick a profile file: type a path, or choose one of the profiles folder."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from dbtui.pasted_path import pasted_path
from dbtui.session import Session
from dbtui.widgets.key_footer import KeyFooter
from dbtui.widgets.ordered_keys import OrderedInput
from engine.support.home_folder import typed_unknown_user


class OpenProfileScreen(ModalScreen[Session | None]):
    HELP = """\
## Open a profile

Type a profile's path and press Enter, or pick one of the profiles folder. The wizard
opens with every value of the file; a file with problems is refused, with the reasons,
and this screen stays open to fix it and try again. Esc goes back.
"""
    CSS_PATH = "open_profile.tcss"
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder = Path(folder)

    def compose(self) -> ComposeResult:
        files = sorted(self.folder.glob("*.toml")) if self.folder.is_dir() else []
        with Vertical(id="open-box"):
            yield Static("Open a profile", classes="title")
            yield OrderedInput(placeholder="path/to/profile.toml", id="open-path")
            yield Static(f"or one of {self.folder}/ (Enter opens):" if files else f"no profiles in {self.folder}/ yet",
                         classes="help", markup=False)
            yield OptionList(*(Option(Content(str(f)), id=str(f)) for f in files), id="open-list")
        yield KeyFooter()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self._open(event.value.strip())

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self._open(event.option.id)

    def _open(self, text: str) -> None:
        typed = pasted_path(text)  # a file dragged onto the terminal comes quoted or escaped
        if no_user_here := typed_unknown_user(typed):  # pathlib raised on it: the wizard ended with a traceback
            self.notify(f"{typed} {no_user_here}", severity="error")
            return
        path = Path(typed).expanduser()
        try:  # pathlib answers False only for a missing path: a name too long, a folder it may not look into raise
            is_file = path.is_file()
        except OSError as error:
            self.notify(f"Cannot open {path}: {error.strerror}", severity="error")
            return
        if not is_file:
            self.notify(f"{path} is not a file", severity="error")
            return
        from engine.profile import ProfileError

        try:
            session = Session.from_file(path)
        except ProfileError as error:  # stays open, with the path, for the user to fix the file and press Enter again
            self.notify(str(error), title=f"Cannot open {path}", severity="error", timeout=15)
            self.query_one("#open-path", Input).value = text  # one picked from the list too
            return
        self.dismiss(session)
