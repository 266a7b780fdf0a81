"""The Parameters step's preset choice: each preset labelled by the cards the hardware advice picks it for."""

from __future__ import annotations

from typing import Any

from textual.widgets import Select

from dbtui.presets import preset_choices
from dbtui.session import Session
from engine.memory.preset_table import size_step


class PresetSelect(Select[str]):
    """The presets offered for the draft's model, labelled as the draft trains (``dbtui.presets.preset_choices``)."""

    def __init__(self, session: Session, value: Any, *, id: str | None = None) -> None:
        self.session = session
        self._choices = preset_choices(session)
        self._labelled_for = self._what_labels()
        super().__init__(self._choices, value=value, compact=True, prompt="choose a preset", id=id)

    def _what_labels(self) -> tuple[Any, ...]:
        """What the labels depend on: read at each edit of the form, cheaply (the labels read the model's files)."""
        # And the measured size the draft's is judged at (the SD presets' rows at 512, 768, 1024 px: sized_family): not
        # the size itself, whose every keystroke would relabel and re-advise.
        return (self.session.trains_prior, self.session.get("model.pretrained"), self.session.advised_family,
                size_step(self.session.trains_at))

    def relabel(self) -> bool:
        """Label the presets as the draft now trains (prior preservation changes the cards each is picked for), keeping
        the choice made. Called at every keystroke in the form: only a change of what the labels depend on relabels.
        Whether it changed (the advice's pick may then differ too)."""
        if (now := self._what_labels()) == self._labelled_for:
            return False
        self._labelled_for = now
        if (options := preset_choices(self.session)) != self._choices:
            self._choices, value = options, self.value
            self.set_options(options)
            self.value = value
        return True
