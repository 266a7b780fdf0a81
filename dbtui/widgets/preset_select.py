"""The Parameters step's preset choice: each preset labelled by the cards the hardware advice picks it for."""

from __future__ import annotations

from typing import Any

from textual.widgets import Select

from dbtui.presets import preset_choices
from dbtui.session import Session


class PresetSelect(Select[str]):
    """The presets offered for the draft's model, labelled as the draft trains (``dbtui.presets.preset_choices``)."""

    def __init__(self, session: Session, value: Any, *, id: str | None = None) -> None:
        self.session = session
        self._choices = preset_choices(session)
        super().__init__(self._choices, value=value, compact=True, prompt="choose a preset", id=id)

    def relabel(self) -> None:
        """Label the presets as the draft now trains (prior preservation changes the cards each is picked for), keeping
        the choice made."""
        if (options := preset_choices(self.session)) != self._choices:
            self._choices, value = options, self.value
            self.set_options(options)
            self.value = value
