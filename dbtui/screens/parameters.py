"""Step 4: every training parameter, presets, live validation, save, and the fit test."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import Button, Input, Label, Select, Static

from dbtui.format import PriceError, read_price
from dbtui.messages import HardwareKnown
from dbtui.field_rules import FAMILY, applies, in_force, settle
from dbtui.presets import (MODIFIERS, PRESET_NAMES, advice_family_of, guessed_note, no_preset_note, preset_values,
                           recommended_preset)
from dbtui.problem_lines import problem_line
from dbtui.save_failure import save_failure
from dbtui.screens.base import WizardScreen
from dbtui.screens.parameters_fit import FIT_STEPS, FitTest
from dbtui.screens.train_again import TrainAgain
from dbtui.widgets.ordered_keys import OrderedInput
from dbtui.widgets.overflow_scroll import OverflowScroll
from dbtui.widgets.preset_select import PresetSelect
from dbtui.widgets.profile_form import ProfileForm
from dbtui.widgets.step_body import StepBody
from dbtui.widgets.vram_line import VramLine
from engine.memory.inputs import as_trained_in, meter_key
from engine.memory.preset_table import BASE_RESOLUTION, measured_at
from engine.profile import ProfileError
from engine.profile.changes import shown_value
from engine.profile.precision_names import frozen_weights_name
from engine.support.home_folder import typed_unknown_user


AS_FP16 = "(as fp16 here)"  # after the VRAM line's figure where this GPU, without bf16, trains bf16 settings in fp16
# model.quantize as the parameters screen offers it (LoRAs; see _show_quantize); the VRAM line shows the effect.
# "none" keeps the frozen weights in the run's precision, which the draft sets (quantize_choices).
QUANTIZE_CHOICES = [("none: {weights}, the run's precision", "none"), ("nf4: 4-bit", "nf4"), ("int8: 8-bit", "int8"),
                    ("fp8: 8-bit float", "fp8")]


def quantize_choices(precision: str) -> list[tuple[str, str]]:
    """The base-weights choices for a draft in ``precision`` (a mixed_precision value): "none" names its dtype, which
    a new draft's fp16 makes fp16 and "no" fp32, not always bf16."""
    weights = frozen_weights_name(precision)
    return [(label.format(weights=weights), value) for label, value in QUANTIZE_CHOICES]


class ParametersScreen(FitTest, TrainAgain, WizardScreen):
    STEP = 3
    NEXT_LABEL = "Train"
    CSS_PATH = "parameters.tcss"
    HELP = """\
## Step 4 of 5: Parameters

Every setting that applies to this model and method, each with its meaning under it (the
LoRA options appear with method = lora): the main ones first, the rest in the Advanced
sections (Enter opens one). A preset (Apply) sets what fits your hardware. A Flux LoRA
offers **Base weights**: the frozen transformer in 4-bit NF4, 8-bit int8 or fp8 (less memory). Red rows and
the lines at the bottom say what is wrong while you type. The **VRAM** line estimates the
GPU memory these settings need and which cards they fit (the memory meter, no GPU needed);
it follows your changes a moment after you stop typing.

To do: apply a preset, check the steps and the learning rate, name the run, then **^s**
saves `profiles/NAME.toml`. **Fit test** (^f) shows where the memory goes, then trains
10 real steps to measure memory, speed, time and cost before the long run. **Command**
(^g) shows the same run as a shell command for a headless machine.

Watch out: Train (^n) starts the real run. A run name that was trained before asks
whether to resume it.
"""
    BINDINGS = [
        Binding("ctrl+s", "save", "Save profile", priority=True),
        Binding("ctrl+g", "command", "Command", show=False),  # its button is in view
        Binding("ctrl+f", "fit", "Fit test"),
    ]
    _quantize_options: list[tuple[str, str]] = []  # the base-weights choices as last shown
    _problems: list[str] = []  # the draft's problems as last validated, which Next lists
    _advised: str | None = None  # the preset the hardware advice picked for the draft as it last trained
    _default_shown = ""  # the Save as path the screen filled in: a run name edit follows it, but not a path typed over it

    def compose_body(self) -> ComposeResult:
        with StepBody(id="par-body"):
            with Vertical(id="par-preset-box"):
                with Horizontal(classes="par-row"):
                    yield Label("Preset")
                    yield Button("Apply", id="par-apply")
                # The whole width: a label names the cards it fits ("…; 24 GB and up without bf16"), cut beside "Preset".
                self._advised, no_preset_said = self._advice()
                yield PresetSelect(self.session, self._advised or Select.NULL, id="par-preset")
            no_preset = Static(Content(no_preset_said or ""), id="par-no-preset")
            no_preset.display = no_preset_said is not None
            yield no_preset
            if note := guessed_note(self.session):  # the presets are that family's: a hub id not downloaded, say
                yield Static(Content(note), id="par-guessed")
            with Horizontal(classes="par-row", id="par-quantize-row"):
                yield Label("Base weights")
                yield Select(quantize_choices(in_force(self.session, "precision.mixed_precision")), value=self.session.get("model.quantize") or "none",
                             allow_blank=False, compact=True, id="par-quantize")
            with Horizontal(classes="par-row"):
                yield Label("Save as")
                self._default_shown = str(self.session.default_path())
                yield OrderedInput(self.session.typed_save_as or self._default_shown, id="par-path", compact=True)
                yield Button("Save", id="par-save", variant="primary")
                yield Button("Command", id="par-command")
            yield ProfileForm(self.session, id="par-form")
            yield Static(f"[b]Fit test[/b]: train {FIT_STEPS} real steps to measure memory, speed, time and cost.", id="par-fit-title")
            with Horizontal(classes="par-row"):
                yield Label("Price per hour")
                yield OrderedInput(self.session.price_text, placeholder="e.g. 0.79 (optional)", id="par-price",
                                   compact=True)
                yield Button("Fit test", id="par-fit")
            yield Static("", id="par-fit-result")
        yield Static("", id="par-fit-status")
        yield VramLine(self.engine.estimate_memory, id="par-vram")
        with OverflowScroll(id="par-problems-box"):  # a new Flux draft's fp16 warning alone fills four lines
            yield Static("", id="par-problems", classes="problems")

    def on_mount(self) -> None:
        self.query_one("#par-fit-status").display = False
        moved = settle(self.session, {FAMILY})  # settings the model's family cannot honour, set aside
        if moved:
            self.query_one(ProfileForm).refresh_values()
            self.query_one(ProfileForm).show_what_applies()
            self.query_one(ProfileForm).tell_aside(moved)
        self._show_quantize()
        self._validate(estimate_now=True, fresh=True)
        self.query_one("#f-name").focus()
        if self.session.hardware is None and not self.app.probing:  # reached from an attached run's dashboard
            self.app.probe_hardware()

    def _advice(self) -> tuple[str | None, str | None]:
        """The hardware advice for this model's family (advised as SD1.5 before the model was chosen), if probed: its
        preset, and the note said in place of one where no preset fits this card (the hardware step says "none") or
        the model cannot load. Whether it loads is asked once for both (it reads the model's files)."""
        report = self.session.hardware
        if self.session.model_load_problems():  # as the Hardware step and `dbtui hardware --profile` say it
            return None, "No preset is advised: the model cannot load (its problem is listed below)."
        if report is None:
            return None, None
        family, model = self.session.advised_family, self.session.get("model.pretrained")
        prior, size = self.session.trains_prior, self.session.trains_at
        return (recommended_preset(report.hardware, family, self.session.demo, model, prior, size),
                no_preset_note(report.hardware, family, model, prior, size))

    def on_hardware_known(self, _: HardwareKnown) -> None:
        self._validate()  # estimated while no GPU was known: now as this one trains the settings
        self._fit_hardware_known()
        choice = self.query_one("#par-preset", Select)
        self._advised, note = self._advice()
        self._say_no_preset(note)
        if choice.value is Select.NULL:  # the answer came after Next (or an attached run): offered as then, not applied
            choice.value = self._advised or Select.NULL

    def _say_no_preset(self, note: str | None) -> None:
        """Show the advice's note where no preset is advised (`_advice`), in place of a pre-selected preset that would
        not fit; hidden where one is."""
        shown = self.query_one("#par-no-preset", Static)
        shown.update(Content(note or ""))
        shown.display = note is not None

    def on_profile_form_edited(self, message: ProfileForm.Edited) -> None:
        field = self.query_one("#par-path", Input)
        if message.key == "name" and self.session.path is None and field.value == self._default_shown:
            field.value = self._default_shown = str(self.session.default_path())
        self._show_quantize()
        if self.query_one(PresetSelect).relabel():
            self._advise_again()
        self._validate()

    def _show_quantize(self) -> None:
        """The base-weights choice for a LoRA, showing the draft's value: offered for Flux, shown for another family
        only where the profile sets one (any family takes it), so that it can be seen and changed."""
        offered = self.session.family_id == "flux" or bool(self.session.get("model.quantize"))
        self.query_one("#par-quantize-row").display = offered and applies(self.session, "model.quantize")
        choice = self.query_one("#par-quantize", Select)
        value = self.session.get("model.quantize") or "none"
        options = quantize_choices(in_force(self.session, "precision.mixed_precision"))
        with choice.prevent(Select.Changed):
            if options != self._quantize_options:  # the precision changed: "none" names another dtype
                choice.set_options(options)
            if choice.value != value:
                choice.value = value
            if options != self._quantize_options:  # the closed dropdown shows the new label of the same value too
                choice.mutate_reactive(Select.value)
            self._quantize_options = options

    @on(Select.Changed, "#par-quantize")
    def _quantize_chosen(self, event: Select.Changed) -> None:
        value = None if event.value in ("none", Select.NULL) else event.value
        if value != self.session.get("model.quantize"):
            self.session.edit("model.quantize", value)
            self._validate()

    def _without_bf16(self) -> bool:
        """Whether this machine's GPU lacks bf16 (the hardware step's probe): it trains bf16 profiles in fp16."""
        report = self.session.hardware
        return bool(report is not None and report.hardware.gpus and not report.hardware.gpus[0].bf16)

    def _as_trained_here(self, profile):
        """``profile`` as this machine's GPU trains it, for the meter: in fp16, with fp32 weights and no fused step, on
        a GPU without bf16 (the fit test measures that); as the profile says without a GPU."""
        return as_trained_in(profile, "fp16") if self._without_bf16() and profile.precision.mixed_precision == "bf16" else profile

    def _validate(self, *, estimate_now: bool = False, fresh: bool = False) -> bool:
        """Show the draft's problems and warnings; whether none stops a run here. ``fresh``: read the data folders
        again, else (as the user types) only when the settings they depend on changed."""
        profile, invalid, missing_here, warnings = self.session.review(fresh=fresh)
        problems = invalid + missing_here  # what this machine lacks stops Train, as it stops the run
        metered = None if profile is None else self._as_trained_here(profile)
        self.query_one(VramLine).request(metered, now=estimate_now, hint=AS_FP16 if metered is not profile else "")
        self.query_one(ProfileForm).mark_problems({p.key for p in problems})
        panel = self.query_one("#par-problems", Static)
        noted = [f"⚠ {problem_line(p)}" for p in warnings]  # the run goes on with these: said, never blocking
        if problems:
            lines = [problem_line(p, say_step=True) for p in problems]
            # The count comes first: at 80x24 the rest may be scrolled out of the panel (Tab reaches it then).
            header = [f"✗ {len(problems)} problems to fix (their fields are marked; Next lists them all):"] if len(lines) > 1 else []
            panel.update(Content("\n".join(header + [f"✗ {line}" for line in lines] + noted)))
            self._problems = lines
        else:
            panel.update(Content.assemble(("✓ The profile is valid.", "green"), *(f"\n{line}" for line in noted)))
        return not problems

    @on(Button.Pressed, "#par-apply")
    def action_apply_preset(self) -> None:
        choice = self.query_one("#par-preset", Select)
        preset = choice.value
        if preset is Select.NULL:  # none is pre-selected where the advice has none for this card: say what Apply wants
            choice.focus()
            self.notify("Choose a preset in the list under Apply (Enter opens it), then Apply.", severity="warning")
            return
        form = self.query_one(ProfileForm)
        before = self._preset_settings()
        form.merge(preset_values(self.session, preset))
        moved = settle(self.session, {FAMILY})  # a preset's setting the model's family cannot honour
        if moved:
            form.refresh_values()
            form.show_what_applies()
            form.tell_aside(moved)
        self._show_quantize()
        relabelled = self.query_one(PresetSelect).relabel()  # the person preset turns prior preservation on
        self._validate()
        # What it changed, said for every preset: the person and style presets' names say it, a tier preset's did not.
        quantize_shown = self.query_one("#par-quantize-row").display  # said where in view: not a full fine-tune's LoRA rank
        changed = [f"{key} = {shown_value(value)}" for key, value in self._preset_settings().items()
                   if value != before[key] and (form.shows(form.specs[key]) if key in form.specs else quantize_shown)]
        said = "; ".join(changed) if changed else "nothing: the draft had its settings already"
        self.notify(f"Applied: {PRESET_NAMES[preset]}. Changed {said}.", timeout=10)
        if relabelled:
            self._advise_again()

    def _preset_settings(self) -> dict[str, Any]:
        """The settings a preset sets, in force (its notice says those it changed, where in view): the form's fields, and
        model.quantize, this screen's own row, which the Flux presets set to NF4 and the full fine-tunes clear."""
        return {**self.query_one(ProfileForm).values(), "model.quantize": self.session.get("model.quantize")}

    def _advise_again(self) -> None:
        """Prior preservation turned on or off (the person or style preset, or its switch) changes the preset the advice
        picks for this card: a Flux draft on 16 GB is offered flux-lora-24gb, which with class images needs 17.2 GB. So
        does an SD draft's size crossing a size the presets were measured at (512, 768 px: judged by the figures of the
        next size above it).
        The new pick is chosen in the dropdown (unless the user chose another there) and said, for Apply."""
        before = self._advised
        self._advised, note = self._advice()
        self._say_no_preset(note)
        if self._advised is None or self._advised == before:
            return
        choice = self.query_one("#par-preset", Select)
        if choice.value in (before, Select.NULL, *MODIFIERS):
            choice.value = self._advised
        prior = "on" if self.session.trains_prior else "off"
        family = advice_family_of(self.session.advised_family, self.session.get("model.pretrained"), self.session.trains_at)
        size = ", over 512 px" if (measured_at(family) or 0) > BASE_RESOLUTION else ""
        self.notify(f"With prior preservation {prior}{size}, the preset for this GPU is {PRESET_NAMES[self._advised]}: "
                    "choose it and press Apply")

    @on(Input.Changed, "#par-path, #par-price")
    def _keep_typed(self, event: Input.Changed) -> None:
        if event.input.id == "par-price":
            self.session.price_text = event.value
        else:
            self.session.typed_save_as = None if event.value == self._default_shown else event.value

    @on(Button.Pressed, "#par-save")
    @on(Input.Submitted, "#par-path")
    def action_save(self) -> None:
        path = self._save_as()
        if no_user_here := typed_unknown_user(str(path)):  # pathlib raised on it, a crash that lost the draft
            self.notify(f"{path} {no_user_here}", severity="error")
            return
        try:  # pathlib answers False only for a missing path: a name too long, a folder it may not look into raise
            is_dir, exists = path.is_dir(), path.exists()
        except OSError as error:
            self.notify(f"Cannot use {path}: {error.strerror}; give another path", severity="error")
            return
        if is_dir:
            self.notify(f"{path} is a folder: give a file name, such as {path / 'my-run.toml'}", severity="error")
            return
        if exists and path != self.session.written_path:
            from dbtui.screens.overwrite import OverwriteScreen

            self.app.push_screen(OverwriteScreen(path), lambda choice: self._save_after_asking(path, choice))
            return
        self._save(path)

    def _save_after_asking(self, path: Path, choice: str | None) -> None:
        if choice == "overwrite":
            self._save(path)
        elif choice == "new":
            from dbtui.screens.overwrite import free_name

            self._save(free_name(path))

    def _save(self, path: Path) -> None:
        try:
            saved = self.session.save(path)
        except ProfileError as error:
            self._validate()
            self.notify(f"{len(error.problems)} problem(s) to fix before saving.", severity="error")
            return
        except OSError as error:
            self.notify(save_failure(path, error), severity="error")
            return
        self.query_one("#par-path", Input).value = str(saved)
        self.notify(f"Saved {saved}")

    @on(Button.Pressed, "#par-command")
    def action_command(self) -> None:
        from dbtui.screens.command import CommandScreen, holds

        profile, problems = self.session.validate()
        if profile is None:
            self.notify("Fix the problems first: the command needs a valid profile.", severity="error")
            return
        saved = self.session.path if self.session.path is not None and holds(self.session.path, profile) else None
        # Unsaved, the commands name the file Ctrl+S writes: the Save as path, which may not be the last one saved.
        self.app.push_screen(CommandScreen(profile, saved or self._save_as(), saved=saved is not None),
                             lambda choice: self.action_save() if choice == "save" else None)

    def _save_as(self) -> Path:
        """The file Save writes: the Save as path, else the profile's default one."""
        return Path(os.path.expanduser(self.query_one("#par-path", Input).value.strip() or self.session.default_path()))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return None if action == "fit" and self._fitting else True

    @on(Button.Pressed, "#par-fit")
    def action_fit(self) -> None:
        if self._fitting:  # the palette and a key pressed before the footer caught up come here too
            return
        # The fit test trains here, as the run will: what this machine lacks stops it too (as `dbtui fit` refuses it).
        if not self._validate(fresh=True):
            self.notify("Fix the problems first.", severity="error")
            return
        profile, _ = self.session.validate()
        text = self.query_one("#par-price", Input).value.strip()
        try:
            price = read_price(text) if text else None
        except PriceError as error:
            self.notify(f"Price per hour: {error}", severity="error")
            return
        self._fit_running(True)
        self._fit_begin(profile.dataset.resolution)
        # The estimate comes first (the meter needs no GPU): the VRAM line starts it now if it is not known yet.
        metered = self._as_trained_here(profile)
        self._fit_key, self._fit_in_fp16 = meter_key(metered), metered is not profile
        from engine.runs.fit import launch_note

        self._fit_launched = launch_note(profile)
        self.query_one(VramLine).request(metered, now=True, hint=AS_FP16 if metered is not profile else "")
        self._fit_status("Fit test running: loading the model…")
        # After the next layout, so that the result's lines count: the breakdown comes into view.
        self.call_after_refresh(self.query_one("#par-fit-result").scroll_visible, top=True, animate=False)
        self.fit(profile, price)

    def leave_problem(self) -> str | None:
        if not self._validate(fresh=True):  # the folders as Train will find them
            # Every one at once: at 80x24 the panel shows six lines and scrolls to the rest.
            return "Fix these first:\n" + "\n".join(self._problems)
        return None
