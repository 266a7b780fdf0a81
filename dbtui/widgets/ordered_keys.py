"""Keys handled in the order they were typed, however many arrive at once.

SSH and tmux hand the terminal several keys in one read, and Textual routes each one as soon
as the app's queue reaches it, before the keys ahead of it have had their effect. So keys
typed right after Tab, Enter on a Next button, Ctrl+N or a key that opens or closes a dialog
land in the old field, or on a screen that is not mounted yet, and are lost. Editing keys
(Backspace, arrows, Home, End…) run as bindings once the key has bubbled up to the App,
after the characters typed behind them. The reproductions for upstream are in
docs/upstream/textual-focus-burst.md.

``OrderedKeysApp`` routes the next key only when the one before it has been handled;
``OrderedInput`` and ``OrderedTextArea`` also run their editing keys as they arrive.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from textual import events
from textual.app import App
from textual.message import Message
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Input, TextArea


class OrderedKeysApp(App):
    """An App that routes a typed key (or paste) only once the one before it has settled.

    After routing a key, the app sends a ``KeyTrail`` message after it, through the same
    widgets (FIFO queues, so it arrives behind the key and everything the key handling posted
    to them). When the trail is back, the key has settled if the screen and the focus are the
    ones it was sent through, the screen is mounted, and nothing waits in the focused chain's
    queues or in the app's ``call_next`` list (a dismissed screen's callback); otherwise another
    trail follows the new chain. A Button's Enter needs two trails (the key, then Pressed), a
    new screen one more (its mount and focus).
    """

    MAX_TRAILS = 16  # a screen that never goes quiet (a live run's events) still gets its keys
    TRAIL_VALVE_S = 0.1  # a trail lost with a removed widget is sent again after this

    class KeyTrail(Message):
        """Follows a routed key through the widgets it bubbles through, back to the App."""

        def __init__(self, number: int) -> None:
            super().__init__()
            self.number = number

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._keys_queued = 0  # posted to the app, not taken off its queue yet
        self._held_keys: deque[events.Key | events.Paste] = deque()
        self._key_in_flight = False
        self._trail_number = 0
        self._trails_left = 0
        self._trail_chain: tuple[Widget, Widget | None] | None = None  # (screen, focused) it was sent through
        self._trail_valve: Timer | None = None

    @property
    def keys_pending(self) -> int:
        """Keys typed but not settled yet: queued, held back, or routed and still being handled."""
        return self._keys_queued + len(self._held_keys) + self._key_in_flight

    def post_message(self, message: Message) -> bool:
        posted = super().post_message(message)
        if posted and _typed(message):
            self._keys_queued += 1
        return posted

    async def on_event(self, event: events.Event) -> None:
        if _typed(event):
            self._keys_queued -= 1
            self._held_keys.append(event)
            if not self._key_in_flight:
                await self._route_next_key()
            return
        await super().on_event(event)

    async def _route_next_key(self) -> None:
        self._key_in_flight = True
        self._trails_left = self.MAX_TRAILS
        await super().on_event(self._held_keys.popleft())  # Textual's routing: priority bindings, then the focus
        if not self._dropped_keys_when_closing():
            self._send_trail()

    def _send_trail(self) -> None:
        self._trail_number += 1
        number = self._trail_number
        self._trail_chain = (self.screen, self.focused)
        if not (self.focused or self.screen).post_message(self.KeyTrail(number)):  # closing: check again at once
            self.post_message(self.KeyTrail(number))
        if self._trail_valve is not None:
            self._trail_valve.stop()
        self._trail_valve = self.set_timer(self.TRAIL_VALVE_S, lambda: self.post_message(self.KeyTrail(number)))

    async def _on_ordered_keys_app_key_trail(self, trail: KeyTrail) -> None:
        if not self._key_in_flight or trail.number != self._trail_number:
            return  # an earlier trail, or the valve's copy of one that came back
        if self._dropped_keys_when_closing():
            return
        if self._screen_changing():
            self._send_trail()  # not counted: a screen's keys wait for it, however slowly it mounts
            return
        if not self._chain_quiet() and self._trails_left > 0:
            self._trails_left -= 1
            self._send_trail()
            return
        if self._trail_valve is not None:
            self._trail_valve.stop()
            self._trail_valve = None
        self._key_in_flight = False
        if self._held_keys:
            await self._route_next_key()

    def _dropped_keys_when_closing(self) -> bool:
        """The app is closing (a key quit it): the keys after it have nowhere to go."""
        if self._exit or not self.screen_stack:
            self._held_keys.clear()
            self._key_in_flight = False
            return True
        return False

    def _screen_changing(self) -> bool:
        """A screen is being pushed, switched or dismissed (its callback not run yet)."""
        return bool(self._next_callbacks) or not self.screen.is_mounted

    def _chain_quiet(self) -> bool:
        """The trail came back through the chain it was sent through, and nothing waits there."""
        screen, focused = self.screen, self.focused
        if (screen, focused) != self._trail_chain:
            return False
        # Textual has no public "idle" for a chain of widgets: read their queues.
        return all(node._message_queue.empty() for node in (focused or screen).ancestors_with_self if node is not self)


def _typed(message: Message) -> bool:
    """A key or paste from the terminal, not yet routed to a widget."""
    return isinstance(message, (events.Key, events.Paste)) and not message.is_forwarded


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
