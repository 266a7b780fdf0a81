"""Text fields that handle a burst of keys in the order it was typed.

Textual runs a widget's own non-priority bindings (Backspace, arrows, Home, End…) only once
the key has bubbled up to the App, through each ancestor's message queue; the characters
typed after it in the same terminal read are inserted first, so ``ab⌫c`` arriving at once
(as SSH delivers it) gives ``ab``. These fields run their own bindings as the key arrives.
The reproduction for upstream is docs/upstream/textual-focus-burst.md.
"""

from __future__ import annotations

from textual import events
from textual.widgets import Input, TextArea


class OrderedKeys:
    """Mixin for a focusable widget: its own key bindings run in its queue, in typing order."""

    async def _on_key(self, event: events.Key) -> None:
        for binding in self._bindings.key_to_bindings.get(event.key, ()):
            if await self.app.run_action(binding.action, self):
                event.stop()
                event.prevent_default()  # handled: neither the base handlers nor the app see it again
                return


class OrderedInput(OrderedKeys, Input):
    """An Input whose editing keys keep their place among the typed characters."""


class OrderedTextArea(OrderedKeys, TextArea):
    """A TextArea whose editing keys keep their place among the typed characters."""
