"""The first screen: new profile, open one, attach to a run, or the demo."""

from __future__ import annotations

import shlex
from pathlib import Path

from rich.console import Group
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from dbtui.engine_facade import Engine
from dbtui.session import STEPS, Session
from dbtui.widgets.indented import indented
from dbtui.widgets.key_footer import KeyFooter

FAMILIES = "SD1.x, SD2.x, SDXL and Flux.1"  # the families the model step takes, as the README names them
CHOICES = [
    ("new", "New profile", "a guided setup, step by step"),
    ("open", "Open a profile…", "edit a saved .toml profile"),
    ("attach", "Attach to a run…", "watch (and control) a training run"),
    ("demo", "Demo", "the tiny built-in model and images: no GPU, no downloads"),
]


def _choice(label: str, help_: str) -> Group:
    """A choice's label over its help, indented as a block: two spaces before the help kept its first line alone
    indented, and a help wrapped at 80 columns ran on from the left edge ("no GPU, no" / "downloads")."""
    return Group(Text(label, style="bold"), indented(Text(help_, style="dim")))


class StartScreen(Screen[Session | None]):
    """Returns the session to continue with (None: quit)."""

    HELP = """\
## Start

**New profile** walks through five steps (hardware, model, dataset, parameters, training)
and keeps every choice in one TOML profile. **Open a profile** edits one you saved.
**Attach** watches a training run, also one started from another terminal or `dbtui run`.
**Demo** trains a tiny built-in model on the CPU in a minute or two: no GPU, no downloads.

Watch out: nothing is written to disk until you save the profile (Ctrl+S on Parameters)
or start training.
"""

    CSS_PATH = "start.tcss"
    BINDINGS = [
        Binding("n", "choose('new')", "New"),
        Binding("o", "choose('open')", "Open"),
        Binding("a", "choose('attach')", "Attach"),
        Binding("d", "choose('demo')", "Demo"),
    ]

    def __init__(self, session: Session, engine: Engine) -> None:
        super().__init__()
        self.session = session
        self.engine = engine

    def compose(self) -> ComposeResult:
        with Vertical(id="start-box"):
            yield Static(f"[b]dbtui[/b]  DreamBooth for {FAMILIES}", id="start-title")
            yield Static("What would you like to do?", classes="help")
            yield OptionList(*(Option(_choice(label, help_), id=key) for key, label, help_ in CHOICES), id="start-choices")
            yield Static("Keys: ↑↓ Enter, or the letters below. F1 help, Ctrl+P every command.", classes="help")
        yield KeyFooter()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.action_choose(event.option.id)

    def action_choose(self, what: str) -> None:
        if what == "new":
            self.dismiss(Session(profiles_dir=self.session.profiles_dir))
        elif what == "demo":
            output_dir = self.session.get("saving.output_dir") if self.session.demo else "runs"
            demo = Session.for_demo(output_dir or "runs")
            demo.profiles_dir = self.session.profiles_dir
            self.dismiss(demo)
        elif what == "open":
            from dbtui.screens.open_profile import OpenProfileScreen

            self.app.push_screen(OpenProfileScreen(self.session.profiles_dir), self._opened)
        elif what == "attach":
            from dbtui.screens.attach import AttachScreen

            output_dir = self.session.get("saving.output_dir") or "runs"
            self.app.push_screen(AttachScreen(self.engine, output_dir), self._attached)

    def _opened(self, session: Session | None) -> None:
        if session is None:
            return
        session.profiles_dir = self.session.profiles_dir
        self.dismiss(session)

    def _attached(self, folder: Path | None) -> None:
        from engine.profile import ProfileError
        from engine.profile.fields import run_name_problem, written_path

        if folder is None:
            return
        try:
            session = Session.from_run(folder)  # the profile `dbtui resume` reads: a save goes to profiles/ instead
        except ProfileError:
            session = Session()  # the dashboard needs only the run folder
        # The draft names this run wherever dbtui was started: Train (after Esc) then offers to resume it, where the
        # run's own relative saving.output_dir would start a new run in the current folder. The draft holds paths as
        # written: a "$" of the folder's name doubled, not read as a variable.
        session.set("saving.output_dir", written_path(str(folder.absolute().parent)))
        if (problem := run_name_problem(folder.name)) is None:
            session.set("name", folder.name)
        else:  # as the folder's name, Parameters would refuse Train; the profile's own name starts a run beside it
            self.app.notify(f"The run's folder name {problem}. Train in the wizard starts a run under the profile's "
                            f"name instead; `dbtui resume {shlex.quote(str(folder.absolute()))}` resumes this one.",
                            title="Attached", severity="warning", timeout=30)
        session.run_folder = folder
        session.step = STEPS.index("training")
        self.dismiss(session)
