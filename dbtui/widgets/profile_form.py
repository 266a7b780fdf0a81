"""A form built from the profile schema: one row per field, its docstring as help.

The everyday fields come first; the rest fold away per section. Edits go straight into the
session's draft (a dict), so the screen can validate the whole profile after each keystroke.
Only the fields that apply are shown (dbtui/field_rules.py), with help in the words of the
model's family (dbtui/family_help.py); a field with a problem is always shown.
"""

from __future__ import annotations

import json
import typing
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Collapsible, Input, Label, Select, Static, Switch

from dbtui.family_help import field_help, unread_help
from dbtui.field_rules import CONTROLS, applies, aside_note, controls_of, settle
from dbtui.session import Session
from dbtui.widgets.ordered_keys import OrderedInput
from engine.profile import Profile, ProfileError, parse_override

SKIP = {"schema_version", "model", "concepts"}
# Grouped by section: each section's name is shown once, as a heading over its rows.
BASIC = [
    "name", "training.method", "training.max_train_steps", "training.train_batch_size", "training.train_text_encoder",
    "optimizer.name", "optimizer.learning_rate", "dataset.resolution", "prior.enabled",
    "precision.mixed_precision", "precision.gradient_checkpointing", "saving.output_dir",
]


@dataclass(frozen=True)
class FieldSpec:
    key: str  # dotted, e.g. "optimizer.learning_rate"
    kind: str  # "bool", "choice", "string", "value"
    help: str
    default: Any
    choices: tuple[Any, ...] = ()
    optional: bool = False

    @property
    def widget_id(self) -> str:
        return "f-" + self.key.replace(".", "--")

    @property
    def section(self) -> str:
        """``training.lora`` for ``training.lora.rank``; empty for a top-level key."""
        return self.key.rpartition(".")[0]

    @property
    def label(self) -> str:
        """The key within its section: the section is a heading, so the label fits 80 columns."""
        return self.key.rpartition(".")[2]


def _model_of(annotation: Any) -> type[BaseModel] | None:
    for arg in (annotation, *typing.get_args(annotation)):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def field_specs(model: type[BaseModel] = Profile, prefix: str = "") -> list[FieldSpec]:
    specs = []
    for name, field in model.model_fields.items():
        if not prefix and name in SKIP:
            continue
        inner = _model_of(field.annotation)
        if inner is not None:
            specs += field_specs(inner, f"{prefix}{name}.")
            continue
        args = [a for a in typing.get_args(field.annotation) if a is not type(None)]
        optional = type(None) in typing.get_args(field.annotation)
        core = args[0] if optional and len(args) == 1 else field.annotation
        if core is bool:
            kind, choices = "bool", ()
        elif typing.get_origin(core) is Literal:
            kind, choices = "choice", typing.get_args(core)
        elif core is str:
            kind, choices = "string", ()
        else:
            kind, choices = "value", ()
        specs.append(FieldSpec(prefix + name, kind, field.description or "", field.default, choices, optional))
    return specs


def to_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    # As written, not as ASCII escapes: an emoji's would be two surrogates ("\\ud83d\\udc36"), which TOML refuses.
    return json.dumps(value, ensure_ascii=False) if isinstance(value, (list, tuple, dict)) else str(value)


def parse_text(spec: FieldSpec, text: str) -> Any:
    """The value typed into a field: strings as typed, others read as TOML; empty is 'default'. A half-typed list
    ("[", '["a"') is kept as typed: the profile's check then marks the row, as for any value of the wrong type."""
    text = text.strip()
    if not text:
        if spec.optional and spec.default is not None:
            return ""  # the key stays, read as empty: removed, its default would apply (every_n_steps: 500, not none)
        return None if spec.optional or spec.kind != "string" else ""
    if spec.kind == "string":
        return text
    try:
        return parse_override(f"v={text}")[1]
    except ProfileError:
        return text


class Section(Collapsible):
    """Advanced fields of one section, built when first opened: ~300 widgets made up front
    cost the screen over a second to appear."""

    def __init__(self, form: ProfileForm, name: str, specs: list[FieldSpec]) -> None:
        # Folded from the start: Textual would add the class once mounted and restyle the section for it.
        super().__init__(title=f"Advanced: {name}", collapsed=True, id=f"sec-{name.replace('.', '--')}",
                         classes="-collapsed")
        self.form = form
        self.specs = specs
        self.built = False

    def on_collapsible_expanded(self, event: Collapsible.Expanded) -> None:
        if event.collapsible is self and not self.built:
            self.built = True
            self.query_one(Collapsible.Contents).mount_all(
                [w for spec in self.specs for w in self.form.row_widgets(spec)])
            self.form.show_what_applies()


class ProfileForm(Vertical):
    DEFAULT_CSS = """
    ProfileForm { height: auto; }
    ProfileForm .row { height: 1; }
    ProfileForm .form-title { margin-top: 1; text-style: bold; }
    ProfileForm .form-section { margin-top: 1; text-style: bold; color: $text-accent; }
    ProfileForm .row Label { width: 28; }
    ProfileForm .row Input, ProfileForm .row Select { width: 1fr; }
    ProfileForm .row Switch { border: none; height: 1; padding: 0; }
    ProfileForm .row.-invalid Label { color: $error; text-style: bold; }
    ProfileForm .field-help { color: $text-muted; padding-left: 28; height: auto; margin-bottom: 1; }
    ProfileForm Collapsible { padding: 0; }
    ProfileForm Collapsible.-invalid CollapsibleTitle { color: $error; text-style: bold; }
    """

    class Edited(Message):
        def __init__(self, key: str) -> None:
            super().__init__()
            self.key = key

    def __init__(self, session: Session, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.session = session
        self.specs = {spec.key: spec for spec in field_specs()}
        self.rows: dict[str, tuple[Widget, Widget]] = {}  # key → (row, help) of every row built so far
        self.problem_keys: set[str] = set()

    def compose(self) -> ComposeResult:
        yield Static("Main settings", classes="form-title")
        heading = ""
        for key in BASIC:
            spec = self.specs[key]
            if spec.section != heading:
                heading = spec.section
                yield Static(heading, classes="form-section", markup=False)
            yield from self.row_widgets(spec)
        sections: dict[str, list[FieldSpec]] = {}
        for spec in self.specs.values():
            if spec.key not in BASIC:
                sections.setdefault(spec.section or "general", []).append(spec)
        for section, specs in sections.items():
            folded = Section(self, section, specs)
            folded.display = any(self.shows(spec) for spec in specs)
            yield folded

    def current(self, spec: FieldSpec) -> Any:
        return self.session.get(spec.key, spec.default)

    def values(self) -> dict[str, Any]:
        """Every field's value in force: the draft's, else the schema's default."""
        return {key: self.current(spec) for key, spec in self.specs.items()}

    def unread(self, spec: FieldSpec) -> str | None:
        """Why the model's family does not read this field; None where it does. A hub id not downloaded has its name's
        family, by which the problems panel warns of the field too."""
        return unread_help(spec.key, self.session.advised_family)

    def help_text(self, spec: FieldSpec) -> str:
        if unread := self.unread(spec):
            return unread
        # By the family the defaults, presets and warnings use: a hub id not downloaded has its name's (Flux's bf16).
        text = field_help(spec.key, spec.help, self.session.advised_family)
        info = self.session.model_info
        if spec.key == "dataset.resolution" and self.session.family_id and info.resolution:
            text += f" This model was made for {info.resolution} px."
        return text

    def row_widgets(self, spec: FieldSpec) -> list[Widget]:
        value = self.current(spec)
        if spec.kind == "bool":
            field = Switch(bool(value), id=spec.widget_id)
        elif spec.kind == "choice":
            field = Select([(str(c), c) for c in spec.choices], value=value if value is not None else Select.NULL,
                           allow_blank=spec.optional, compact=True, id=spec.widget_id)
        else:
            field = OrderedInput(to_text(value), id=spec.widget_id, compact=True)
        field.disabled = bool(self.unread(spec)) and not value
        row = Horizontal(Label(spec.label), field, classes="row", id=f"row-{spec.widget_id}")
        # Plain text: the schema's words quote "Flux.1 [dev]", which Rich markup would take for a tag and drop.
        help_ = Static(self.help_text(spec), classes="field-help", markup=False)
        row.display = help_.display = self.shows(spec)
        self.rows[spec.key] = (row, help_)
        return [row, help_]

    def _has_problem(self, spec: FieldSpec) -> bool:
        return any(k == spec.key or k.startswith(spec.key + ".") or spec.key.startswith(k + ".")
                   for k in self.problem_keys if k)

    def shows(self, spec: FieldSpec) -> bool:
        """Whether the field's row is in view: it applies, or it has a problem to fix."""
        return applies(self.session, spec.key) or self._has_problem(spec)

    def show_what_applies(self) -> None:
        for key, (row, help_) in self.rows.items():
            row.display = help_.display = self.shows(self.specs[key])
        for section in self.query(Section):
            section.display = any(self.shows(spec) for spec in section.specs)

    def _spec_for(self, widget_id: str | None) -> FieldSpec | None:
        key = (widget_id or "").removeprefix("f-").replace("--", ".")
        return self.specs.get(key)

    def _store(self, spec: FieldSpec, value: Any) -> None:
        if value == self.current(spec):
            return  # also swallows the Changed events widgets post when first mounted
        self.session.edit(spec.key, value)
        if spec.key in CONTROLS:
            moved = settle(self.session, {spec.key})
            if moved:
                self.refresh_values()
                self.tell_aside(moved)
            self.show_what_applies()
        self.post_message(self.Edited(spec.key))

    def merge(self, values: dict[str, Any]) -> None:
        """Apply a preset: the draft takes its values, and the fields it switches on or off follow."""
        self.session.merge(values)
        self.tell_aside(settle(self.session, controls_of(values)))
        self.refresh_values()
        self.show_what_applies()

    def tell_aside(self, moved: set[str]) -> None:
        """Say what ``settle`` set aside: nothing leaves the draft without a word."""
        note = aside_note(self.session, moved)
        if note:
            self.notify(note, title="Set aside", timeout=10)

    def on_input_changed(self, event: Input.Changed) -> None:
        spec = self._spec_for(event.input.id)
        if spec is not None:
            event.stop()
            if event.value != to_text(self.current(spec)):
                self._store(spec, parse_text(spec, event.value))

    def on_switch_changed(self, event: Switch.Changed) -> None:
        spec = self._spec_for(event.switch.id)
        if spec is not None:
            event.stop()
            self._store(spec, event.value)

    def on_select_changed(self, event: Select.Changed) -> None:
        spec = self._spec_for(event.select.id)
        if spec is not None:
            event.stop()
            self._store(spec, None if event.value is Select.NULL else event.value)

    def mark_problems(self, keys: set[str]) -> None:
        """Light up the rows whose key (or a part of it) has a problem, and bring them into view."""
        self.problem_keys = set(keys)
        for key, (row, _) in self.rows.items():
            spec = self.specs[key]
            row.set_class(any(k == spec.key or k.startswith(spec.key + ".") for k in keys), "-invalid")
        for section in self.query(Section):
            section.set_class(any(self._has_problem(s) for s in section.specs), "-invalid")
        self.show_what_applies()

    def refresh_values(self) -> None:
        """Show the draft's values again (after a preset changed many of them)."""
        # One walk of the form's widgets: a query per field matched every widget against each field's id, some half a
        # second of CPU at each switch that moves values.
        built = {widget.id: widget for widget in self.walk_children() if widget.id}
        for spec in self.specs.values():
            widget = built.get(spec.widget_id)
            if widget is None:
                continue  # in a section not opened yet: it will be built from the draft
            value = self.current(spec)
            if isinstance(widget, Switch):
                widget.value = bool(value)
            elif isinstance(widget, Select):
                widget.value = value if value is not None else Select.NULL
            elif isinstance(widget, Input):
                widget.value = to_text(value)
