"""The dataset step's class-image count of the concept shown (``concepts.N.num_class_images``): the number as typed,
and beside it what the concept's last check counted, as `dbtui dataset check --profile` says it (wanted, present in
the class folder, to generate), or the profile's problem with the number."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.content import Content
from textual.message import Message
from textual.widgets import Input, Label, Static

from dbtui.session import Session
from dbtui.widgets.ordered_keys import OrderedInput

KEY = "num_class_images"


def _field() -> Any:
    from engine.profile.schema import ConceptSection  # pydantic: imported once the step is shown

    return ConceptSection.model_fields[KEY]


class ClassCount(Horizontal):
    """Label, number and counts on one row; the counts wrap under it where they do not fit 80 columns."""

    DEFAULT_CSS = """
    ClassCount { height: auto; padding: 0 1; margin-bottom: 1; }
    ClassCount Label { width: 17; }
    ClassCount Input { width: 8; }
    ClassCount #ds-class-count { width: 1fr; height: auto; margin-left: 1; }
    """

    class Edited(Message):
        """The user changed the number: the concept's check no longer counts it."""

    def __init__(self, session: Session) -> None:
        super().__init__(id="ds-class-images")
        self.session = session
        self.index = 0

    def compose(self) -> ComposeResult:
        yield Label("Class images")
        yield OrderedInput(placeholder=str(_field().default), type="integer", compact=True, id=f"ds-{KEY}",
                           tooltip=_field().description)
        yield Static("", id="ds-class-count")

    def show(self, index: int) -> None:
        """Concept ``index``'s number, as the draft holds it (empty: the schema's default), and its counts."""
        self.index = index
        value = self.session.get(f"concepts.{index}.{KEY}")
        self.query_one(Input).value = "" if value is None else str(value)
        self.show_counts()

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        concept = self.session.get(f"concepts.{self.index}")
        typed = event.value.strip()
        try:
            value: Any = int(typed)
        except ValueError:
            value = typed  # "-" alone, or empty: kept as typed, the profile's problem says what is wrong
        if value == concept.get(KEY, ""):
            return  # filled from the draft (a concept shown): nothing changed
        if value == "":
            concept.pop(KEY, None)  # the default applies, as in a profile that leaves the key out
        else:
            concept[KEY] = value
        self.post_message(self.Edited())
        self.show_counts()

    def show_counts(self) -> None:
        self.query_one("#ds-class-count", Static).update(self._said())

    def _said(self) -> str | Content:
        """What is said beside the number (markup; Content where it holds the typed value): its problem (the schema's
        limits, as `dbtui validate` tells them), else whether prior preservation uses it, else what the concept's last
        check counted for this very number."""
        from engine.dataset.profile_settings import shared_class_set, to_generate_said, unusable_said
        from engine.profile import ProfileError

        key = f"concepts.{self.index}.{KEY}"
        profile = None
        try:
            profile = self.session.profile()
        except ProfileError as error:
            mine = [problem.message for problem in error.problems if problem.key == key]
            if mine:
                # The typed value is a value, not markup: escaped, "[$x]" in it vanished as a variable.
                return Content.from_markup("[red]✗ $problem[/]", problem=mine[0])
        if not self.session.trains_prior:
            return "[dim]used with prior preservation, which is off (Parameters)[/]"
        wanted = self.session.get(key, _field().default)
        report = self.session.reports.get(self.index)
        summary = getattr(report, "summary", None)
        if summary is None or summary.class_images_wanted != wanted:  # checked before prior was on, or unchecked
            return "wanted: Check (^r) counts the class folder"
        counted = [] if summary.class_images_present is None else [f"{summary.class_images_present} in the class folder{unusable_said(summary)}"]
        if summary.class_images_generated:
            counted.append(f"{summary.class_images_generated} generated earlier")
        # While a setting of another step has a problem, the sections that tell the sets are read alone.
        sets = profile or self.session.class_sets_profile()
        shared = None if sets is None else shared_class_set(sets, self.index)
        # Numbered as the concept selector numbers them.
        return "wanted: " + ", ".join([*counted, to_generate_said(summary, shared, first_number=1)])
