"""The help screen: the steps, the keys, and where things go on disk."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

HELP = """\
# dbtui help

**Steps**: Hardware › Model › Dataset › Parameters › Training. `Ctrl+N` goes to the next step,
`Esc` back. Every choice lands in one TOML profile (`profiles/NAME.toml`); run it headless
with `dbtui run profiles/NAME.toml`.

| key | does |
|---|---|
| `Tab` / `Shift+Tab` | move between fields and buttons |
| `Enter` / `Space` | press a button, pick an option, toggle a switch |
| `Ctrl+N` / `Esc` | next / back |
| `Ctrl+S` | save (profile on Parameters, caption on Captions) |
| `Ctrl+P` | command palette: every action of the screen |
| `Ctrl+T` | light / dark theme |
| `F1` | this help |
| `Ctrl+Q` | quit (a detached training run keeps going) |

**Dashboard**: `s` stop and save, `c` save a checkpoint now, `p` sample now, `d` detach.
Attach again later from the start screen, or `tail -f RUN/events.jsonl`.

**No GPU?** Choose *Demo* on the start screen: a tiny built-in model trains on a CPU.
"""


class HelpScreen(ModalScreen[None]):
    CSS_PATH = "help.tcss"
    BINDINGS = [Binding("escape,f1,q", "dismiss(None)", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Markdown(HELP)
