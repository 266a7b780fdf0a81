"""F1: what the screen under it is for, its keys, then the keys that work everywhere.

Each screen says what it is for in Textual's own ``HELP`` class variable (Markdown), so the
text lives beside the screen it explains; the keys are read from the screen's bindings, so
they cannot drift from what the keys do.
"""

from __future__ import annotations

from textwrap import dedent

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Markdown

from dbtui.widgets.key_footer import KeyFooter

GENERAL = """\
## dbtui

A guided setup for DreamBooth fine-tuning: Hardware › Model › Dataset › Parameters ›
Training. Every choice lands in one TOML profile (`profiles/NAME.toml`); run it headless
with `dbtui run profiles/NAME.toml`.
"""

EVERYWHERE = """\
### Everywhere

- **Tab** / **Shift+Tab** move between fields and buttons; the focused one is lit.
- **Enter** / **Space** press a button, pick an option, toggle a switch.
- **^p** (Ctrl+P) the command palette: every action of the screen, the earlier steps and the next one.
- **f1** this help (again to close it), **^t** light / dark theme, **^q** quit.
"""


# Textual's own screen keys (focus moves, copy) are in EVERYWHERE or need no saying.
TEXTUAL_SCREEN_ACTIONS = {binding.action for binding in Screen.BINDINGS if isinstance(binding, Binding)}


def screen_keys(screen: Screen) -> list[str]:
    """``screen``'s own enabled keys, one line per action: ``- **esc** / **q** Close``."""
    keys: dict[tuple[str, str], list[str]] = {}
    for active in screen.active_bindings.values():
        binding = active.binding
        if active.node is screen and binding.description and binding.action not in TEXTUAL_SCREEN_ACTIONS:
            keys.setdefault((binding.action, binding.description), []).append(screen.app.get_key_display(binding))
    return [f"- {' / '.join(f'**{key}**' for key in shown)} {description}" for (_, description), shown in keys.items()]


def help_markdown(screen: Screen) -> str:
    """The help page for ``screen``: its purpose, its own keys, then the general keys."""
    parts = [dedent(screen.HELP).strip() if screen.HELP else GENERAL]
    keys = screen_keys(screen)
    if keys:
        parts.append("### Keys here\n\n" + "\n".join(keys))
    parts.append(EVERYWHERE)
    return "\n\n".join(parts)


class HelpScreen(ModalScreen[None]):
    CSS_PATH = "help.tcss"
    BINDINGS = [Binding("escape,q", "dismiss(None)", "Close")]

    def __init__(self, about: Screen) -> None:
        super().__init__()
        self.text = help_markdown(about)

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Markdown(self.text)
        yield KeyFooter()
