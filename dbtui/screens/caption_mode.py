"""After captions were edited: ask whether training should use them (by default it does not)."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from dbtui.widgets.key_footer import KeyFooter

# The caption modes offered, with the key that picks each.
CHOICES = {
    "caption_file_then_prompt": ("c", "Caption, then prompt"),
    "caption_file": ("f", "Caption file only"),
    "instance_prompt": ("p", "Prompt only"),
}
MODE_WORDS = {"instance_prompt": "the instance prompt alone", "file_name": "each file's name"}  # modes that read no file


class CaptionModeScreen(ModalScreen[str | None]):
    """Returns the chosen caption mode, or None (Esc: leave it as it is)."""

    CSS_PATH = "caption_mode.tcss"
    # Below 72 columns the three buttons do not fit side by side: they stack (caption_mode.tcss).
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (72, "-wide")]
    HELP = """\
## Use the captions?

This concept has captions, but it trains every image with its instance prompt alone.
**c** trains with each caption followed by the instance prompt (the prompt alone where an
image has no caption). **f** uses only the caption files: each must name the identifier.
**p** keeps the instance prompt for every image. Esc decides later (the parameters step
shows `caption_mode` too).
"""
    BINDINGS = [
        Binding("escape", "dismiss(None)", "Later"),
        *(Binding(key, f"dismiss('{mode}')", label) for mode, (key, label) in CHOICES.items()),
    ]

    def __init__(self, edited: bool = True, mode: str = "instance_prompt") -> None:
        super().__init__()
        self.edited = edited  # after an edit on the Captions screen, or the Dataset step's offer of files already there
        self.mode = mode  # the concept's caption mode now, one of MODE_WORDS

    def compose(self) -> ComposeResult:
        with Vertical(id="cm-box"):
            yield Static(f"[b]Train with the captions {'you edited' if self.edited else 'beside the images'}?[/b]")
            yield Static(f"This concept trains each image with {MODE_WORDS[self.mode]}, so training ignores caption "
                         "files. Choose what each image is trained with.", classes="help")
            with Horizontal(id="cm-buttons"):
                for mode, (key, label) in CHOICES.items():
                    yield Button(f"{label} ({key})", id=f"cm-{mode}", compact=True)
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one("#cm-caption_file_then_prompt", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss((event.button.id or "").removeprefix("cm-") or None)
