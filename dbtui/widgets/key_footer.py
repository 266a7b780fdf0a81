"""The key bar at the foot of every screen."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer
from textual.widgets._footer import FooterKey


class KeyFooter(Footer):
    """Textual's footer in its compact style: at 80 columns every screen's labels fit whole.

    Each screen keeps its footer to the everyday keys; the others stay in the Ctrl+P palette
    and in the F1 help (``show=False`` on their bindings).
    """

    _built_from: tuple = ()  # the screen's bindings the keys shown (or about to be) are built from

    def __init__(self) -> None:
        super().__init__(compact=True)

    def _bindings_of(self, screen: Screen) -> tuple:
        """All that Footer.compose builds the keys from: the bindings shown, whether each is enabled, its tooltip, and
        the palette's key (not the focused widget's hidden editing keys, which change at every Tab)."""
        bindings = screen.active_bindings
        shown = tuple((binding, enabled, tooltip) for _, binding, enabled, tooltip in bindings.values() if binding.show)
        return shown, self.show_command_palette, bindings.get(self.app.COMMAND_PALETTE_BINDING, (None,))[1:]

    def bindings_changed(self, screen: Screen) -> None:
        # Textual builds the keys again at every focus change, and at each such change until the first rebuild runs;
        # most leave the bindings as they were, and each rebuild restyled and laid out the whole screen again.
        if screen.app.app_focus and self.is_attached and screen is self.screen:  # where Textual rebuilds them
            bindings = self._bindings_of(screen)
            if self._bindings_ready and bindings == self._built_from:
                return
            self._built_from = bindings  # the rebuild queued shows them: a call before it runs needs none
        super().bindings_changed(screen)

    def compose(self) -> ComposeResult:
        if self._bindings_ready:
            self._built_from = self._bindings_of(self.screen)
        # Each key is made compact before it mounts: Textual sets the class after, and restyles the key for it.
        for widget in super().compose():
            if isinstance(widget, FooterKey):
                widget.add_class("-compact", update=False)
            yield widget
