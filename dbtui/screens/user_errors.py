"""Engine errors a user can cause become notifications, never the end of the app.

Textual ends the whole app when a handler raises, losing every unsaved wizard step, and after
an exception it stops that widget's message loop too, so the app cannot recover from it
centrally: each handler that calls the engine directly is wrapped instead.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from engine.errors import DbtuiError

Handler = TypeVar("Handler", bound=Callable[..., Any])


def notify_user_errors(title: str) -> Callable[[Handler], Handler]:
    """Wrap a screen method: a DbtuiError it raises is shown with ``title`` and the screen goes on."""

    def wrap(method: Handler) -> Handler:
        @functools.wraps(method)
        def guarded(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(self, *args, **kwargs)
            except DbtuiError as error:
                self.notify(str(error), title=title, severity="error", timeout=10)
                return None

        return guarded  # type: ignore[return-value]

    return wrap
