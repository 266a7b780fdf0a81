"""Step 2: the base model: a diffusers folder, a hub id, or a single file converted here."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.content import Content
from textual.message import Message
from textual.widgets import Button, Input, ProgressBar, Static

from dbtui.conversions import Conversion
from dbtui.messages import EngineEvent, WorkDone, WorkFailed
from dbtui.pasted_path import pasted_path
from dbtui.screens.base import WizardScreen
from dbtui.screens.family_defaults import adopt_family_defaults
from dbtui.screens.model_into import IntoAnswer, into_problem, read_into
from dbtui.screens.model_work import ask_target, check_model, convert_model
from dbtui.screens.model_words import SOURCE_HELP, failure_text, family_text, folder_text, warning_text
from dbtui.widgets.flux_parts import FluxParts
from dbtui.widgets.ordered_keys import OrderedInput
from dbtui.widgets.step_body import StepBody
from engine.events import PhaseProgress, PhaseStarted, Warning as WarningEvent
from engine.profile.fields import written_path
from engine.support.home_folder import typed_unknown_user

if TYPE_CHECKING:
    from engine.model_import import ConversionTarget

NAME_IT = "Name the base model to fine-tune: a folder, hub id or file, or builtin:tiny-sd1 for the demo."


class ModelScreen(WizardScreen):
    STEP = 1
    CSS_PATH = "model.tcss"
    HELP = """\
## Step 2 of 5: Base model

The SD1.x, SD2.x, SDXL or Flux.1 model you fine-tune: a diffusers folder (with
`model_index.json`), a hub id, or a single `.safetensors`/`.ckpt` file.

To do: type or paste it and press Enter (or Check); the family found shows below. A single
file can be converted here, once, into the folder named beside Convert (yours to change);
one that holds its conversion already is offered as it is. Otherwise training converts it
into the run folder. Where the conversion needs --config or --prediction-type, the step
says the `dbtui convert` command to run in a terminal. For a Flux transformer file (as
ComfyUI and Forge have it), name the
components (a diffusers Flux folder or hub id) and, if you have them, the VAE, CLIP-L and
T5 files before converting.

Watch out: a hub id downloads several GB on the first run. dbtui trains SD1.x, SD2.x,
SDXL and Flux.1 ([dev], [schnell]) models and their fine-tunes; the SDXL refiner and other
families stop here, with the reason. Settings the new model's family cannot use are set
aside, with a notification naming them (they come back if you return to the earlier model).
"""

    @dataclass
    class TargetFailed(Message):
        """The engine could not answer for Into, asked for this file, these Flux parts and this folder (None: a
        suggestion); ``message`` is shown only where they are still those named (``_asked``)."""

        source: str
        parts: dict
        into: Path | None
        message: str

    def __init__(self, session, engine) -> None:
        super().__init__(session, engine)
        self.failed_check: str | None = None  # why the check of the model now named failed
        self.failure_said = False
        self.checking: str | None = None  # the source being checked: Next waits for its family's rules
        self.into = IntoAnswer()
        self.folder_line = Content()  # what #model-folder says of the file shown, where no conversion is offered
        self.converted: str | None = None  # the folder Convert wrote last, checked once it is done
        self.converting: str | None = None  # the file being converted: Next waits for its folder
        # From Convert to its PhaseStarted: a warning meanwhile is its wait for another terminal's conversion into
        # the folder (engine/models/conversion_lock.py), kept here ("" none yet) to be put away once that wait ends.
        self.waiting: Content | None = None
        self.warning = Content()  # what #model-warning shows

    def compose_body(self) -> ComposeResult:
        with StepBody():
            yield Static("Base model", classes="title")
            yield Static(SOURCE_HELP, classes="help")
            with Horizontal(id="model-row"):
                yield OrderedInput(self.session.get("model.pretrained", ""), placeholder="folder, hub id or file", id="model-source", compact=True)
                yield Button("Check", id="model-check", compact=True)
            yield Static(id="model-family")
            yield FluxParts()
            with Horizontal(id="model-convert-row"):
                yield Static("Into", id="model-convert-to-label")
                yield OrderedInput(placeholder="the diffusers folder to write", id="model-convert-to", compact=True)
                yield Button("Convert to diffusers", id="model-convert", variant="primary", compact=True)
                yield ProgressBar(id="model-progress", show_eta=False)
            yield Static(id="model-folder")
            yield Static(id="model-warning")

    def on_mount(self) -> None:
        self.query_one("#model-convert-row").display = False
        self.query_one("#model-flux-parts").display = False
        self._warn(Content())
        info = self.session.model_info
        if info is not None and info.source == self.session.get("model.pretrained"):
            self._show(info)
        else:
            self.action_check()
        self.query_one("#model-source").focus()

    @on(Input.Submitted, "#model-source")
    @on(Button.Pressed, "#model-check")
    def action_check(self) -> None:
        # A folder or file pasted quoted or as a file:// URL: read literally, it passed as a hub id.
        source = pasted_path(self.query_one("#model-source", Input).value)
        if not source:
            # The draft keeps the model checked before (Back and here again shows it) until another is named and checked.
            self._say_name_it()
            return
        if no_user_here := typed_unknown_user(source):  # the check said pathlib's "Could not determine home directory."
            self.query_one("#model-family", Static).update(Content.from_markup("[red]✗ $said[/]",
                                                                                said=f"{source} {no_user_here}"))
            self._forget_shown()
            return
        self.session.set("model.pretrained", source)
        self.failed_check = None
        self.failure_said = False
        self.checking = source
        if source != self.converted:
            self._warn(Content())  # the conversion's warnings: of another model
        self.query_one("#model-family", Static).update("checking…")
        self._forget_shown()
        # model.vae and model.tokenizer (an opened profile's) stand for the folder's parts they replace.
        self.inspect(source, {key: value for key in ("vae", "tokenizer") if (value := self.session.get(f"model.{key}"))})

    def _say_name_it(self) -> None:
        """The empty field names no model: the ✓ and "The profile will use" of the one checked before are put away."""
        self.query_one("#model-family", Static).update(Content.from_markup("[red]✗ $said[/]", said=NAME_IT))
        self._forget_shown()

    def _forget_shown(self) -> None:
        """What the screen said of the model checked before: it is not the one named now (its Convert converted
        the old file, and "The profile will use" named the old folder)."""
        self.query_one("#model-convert-row").display = False
        self.query_one("#model-flux-parts").display = False
        self.query_one("#model-folder", Static).update("")

    @on(Button.Pressed, "#model-convert")
    def action_convert(self) -> None:
        info = self.session.model_info
        if info is None or info.kind != "single-file" or info.source != self.session.get("model.pretrained"):
            return
        typed = self.query_one("#model-convert-to", Input).value.strip()
        into = read_into(typed)
        if into is None or not typed:
            self.query_one("#model-folder", Static).update(Content.from_markup("[red]$problem[/]", problem=into_problem(typed)))
            return
        self.query_one("#model-convert", Button).disabled = True
        bar = self.query_one("#model-progress", ProgressBar)
        bar.update(total=None, progress=0)  # working, until its PhaseStarted: not the conversion before's 100 %
        bar.display = True
        self._warn(Content())
        self.converting = info.source
        self.waiting = Content()
        conversion = Conversion(info.source, into)
        self.app.conversions.append(conversion)
        self.convert(conversion, self._parts(info), None if info.family_id == "flux" else self.session.get("model.vae"))

    @on(Input.Changed, "#model-convert-to")
    @on(Input.Changed, "#model-flux-parts Input")
    def _target_edited(self) -> None:
        """The button says what it does, as the engine answers for this folder and these Flux parts (a conversion from
        other parts is another model); Into left empty or at the engine's suggestion is suggested again."""
        info = self.session.model_info
        if info is None or info.kind != "single-file" or not info.supported:
            return
        typed = self.query_one("#model-convert-to", Input).value.strip()
        parts = self._parts(info)
        self._say_target()  # "Convert to diffusers" until the engine says the folder holds the conversion
        if self.into.answered(typed, info.source, parts):
            return
        if self.into.follows_suggestion(typed):
            self.suggest_target(info.source, parts, None)
        elif (into := read_into(typed)) is not None:
            self.suggest_target(info.source, parts, into)

    def _say_target(self) -> None:
        info = self.session.model_info
        typed = self.query_one("#model-convert-to", Input).value.strip()
        reuse = info is not None and self.into.reuses(typed, info.source, self._parts(info))
        self.query_one("#model-convert", Button).label = "Use this conversion" if reuse else "Convert to diffusers"
        self.query_one("#model-folder", Static).update(
            Content.from_markup("$typed holds this file's conversion already: [b]Use this conversion[/b] puts it in the "
                                "profile as it is. To convert again, name another folder.", typed=typed)
            if reuse else self.folder_line)

    def _parts(self, info) -> dict:
        return self.query_one(FluxParts).sources() if info.family_id == "flux" else {}

    @work(thread=True, exclusive=True, exit_on_error=False, group="model")
    def inspect(self, source: str, overrides: dict[str, str]) -> None:
        check_model(self.engine, self.post_message, source, overrides)

    @work(thread=True, exclusive=True, exit_on_error=False, group="model-target")
    def suggest_target(self, source: str, parts: dict, into: Path | None) -> None:
        ask_target(self.engine, self.post_message, source, parts, into,
                   lambda error: self.TargetFailed(source, parts, into, error))

    # Not in the check's group, nor exclusive: a conversion cannot be stopped, so a check (or another file's
    # conversion) meanwhile cancelled only its worker, which then showed cancelled while its thread converted on.
    @work(thread=True, exit_on_error=False, group="model-convert")
    def convert(self, conversion: Conversion, flux_sources: dict, vae: str | None) -> None:
        convert_model(self.engine, self.post_message, conversion, flux_sources, vae)

    def on_engine_event(self, message: EngineEvent) -> None:
        bar = self.query_one("#model-progress", ProgressBar)
        event = message.event
        if isinstance(event, PhaseStarted):
            self._waited()
            bar.update(total=event.total, progress=0)
        elif isinstance(event, PhaseProgress):
            bar.update(total=event.total, progress=event.done)
        elif isinstance(event, WarningEvent):
            # Kept on screen: it says how to convert otherwise (a guessed prediction type), after the toast is gone.
            said, kept = warning_text(event.message, event.advice, self.session.get("model.pretrained"),
                                      self.query_one("#model-convert-to", Input).value.strip())
            self._warn(kept)
            if self.waiting is not None:
                self.waiting = kept
            self.notify(said, severity="warning")

    def on_work_done(self, message: WorkDone) -> None:
        if message.what == "inspect":
            if message.result.source != self.session.get("model.pretrained"):
                return  # a check of a source the user has since replaced
            self.checking = None
            from dbtui.field_rules import FAMILY, aside_note, settle  # the profile schema: imported once a model is checked

            self.session.adopt_model(message.result)
            adopt_family_defaults(self.session)  # Flux's bf16, where the draft names no precision
            note = aside_note(self.session, settle(self.session, {FAMILY}))  # what this model's family cannot honour
            if note:
                self.notify(note, title="Set aside", timeout=10)
            if pasted_path(self.query_one("#model-source", Input).value):
                self._show(message.result)
            else:  # emptied while it was checked: its ✓ would stand beside the empty field
                self._say_name_it()
        elif message.what == "target":
            self._answer(*message.result)
        else:
            source, made, reused = message.result
            folder = str(made)
            self._converted(source)
            if source != self.session.get("model.pretrained"):  # another model was checked while it converted
                self.notify(f"Converted {source} into {folder}; the profile keeps the model named since")
                return
            if pasted_path(self.query_one("#model-source", Input).value) != source:  # typed since, not checked yet
                self.notify(f"Converted {source} into {folder}; the Model field keeps what you typed since")
                return
            self.converted = written_path(folder)  # the draft's form: "out$$dir" would be read as out$dir
            self.session.set("model.pretrained", self.converted)
            self.query_one("#model-source", Input).value = self.converted
            self.query_one("#model-convert-row").display = False
            self.query_one("#model-flux-parts").display = False
            self.notify(f"Using {folder}, which holds this file's conversion" if reused else f"Converted into {folder}")
            self.action_check()

    def on_work_failed(self, message: WorkFailed) -> None:
        if message.what == "Conversion":
            self._converted(message.about)
        if message.about != self.session.get("model.pretrained"):
            return  # a check or conversion of a source the user has since replaced: its ✗ is not of the one named now
        self.query_one("#model-convert", Button).disabled = False
        self.query_one("#model-family", Static).update(failure_text(
            message.what, message.message, self.session.get("model.pretrained"),
            self.query_one("#model-convert-to", Input).value.strip()))
        if message.what == "Model check":
            self.checking = None
            self.failed_check = message.message
            self._forget_shown()

    def on_model_screen_target_failed(self, message: TargetFailed) -> None:
        # Its worker, replaced by a newer one, still posts: a failure for a folder since retyped came after that one's answer.
        if self._asked(message.source, message.parts) and self._asked_into(message.into):
            self.query_one("#model-folder", Static).update(Content.from_markup(
                "[red]✗ $message[/] Name the folder to convert into above.", message=message.message))

    def _converted(self, source: str | None) -> None:
        if source == self.converting:
            self.converting = None
            self.query_one("#model-progress").display = False
            self._waited()

    def _waited(self) -> None:
        """The conversion's wait for another is over (it converts, or has ended): its notice is put away."""
        if self.waiting and self.warning == self.waiting:
            self._warn(Content())
        self.waiting = None

    def _show(self, info) -> None:
        self.query_one("#model-family", Static).update(family_text(info, self.session.get("dataset.resolution"),
                                                                     self.session.guessed_size))
        single = info.kind == "single-file" and info.supported
        self.query_one("#model-convert-row").display = single
        # Free for a new file, even after converting another; not for one still converting: a second press converted
        # it again into the same folder, beside the first.
        self.query_one("#model-convert", Button).disabled = self.converting == info.source
        self.query_one("#model-progress").display = self.converting == info.source  # idle, it pulses as if working
        self.query_one("#model-flux-parts").display = single and info.family_id == "flux"
        if single and info.family_id == "flux":
            # The parts and Convert are what such a file needs next: in view however many rows the help above wraps to.
            self.call_after_refresh(self.query_one("#model-convert-row").scroll_visible, animate=False)
        self.folder_line = folder_text(info)
        self.query_one("#model-folder", Static).update(self.folder_line)
        if single:
            self.into.forget()
            self.query_one("#model-convert-to", Input).value = ""
            self._target_edited()

    def _warn(self, text: Content) -> None:
        warning = self.query_one("#model-warning", Static)
        self.warning = text
        warning.update(text)
        warning.display = bool(text)  # none: no blank line where it would be

    def _answer(self, source: str, parts: dict, into: Path | None, target: ConversionTarget) -> None:
        """The engine's answer for Into: a suggestion fills it where the user has named no folder of their own."""
        if not self._asked(source, parts):
            return  # of a file, or of Flux parts, the user has since replaced
        if self._asked_into(into) and (suggested := self.into.take(source, parts, into, target)) is not None:
            self.query_one("#model-convert-to", Input).value = suggested
        self._say_target()

    def _asked(self, source: str, parts: dict) -> bool:
        """Whether an answer for Into (or its failure) is of the file and the Flux parts named now."""
        info = self.session.model_info
        return source == self.session.get("model.pretrained") and info is not None and parts == self._parts(info)

    def _asked_into(self, into: Path | None) -> bool:
        """Whether it is of the folder in Into now: a suggestion's (None) while Into is empty or at the last one."""
        return self.into.of_into(self.query_one("#model-convert-to", Input).value.strip(), into)

    def _still_converting(self, key: str) -> str:
        return f"Still converting {self.converting}: {key} again once it is done (the profile then uses its folder)."

    def action_back(self, step: int | None = None) -> None:
        # The conversion's answer comes to this screen: left now, its folder would never reach the profile.
        if self.converting is not None and self.converting == self.session.get("model.pretrained"):
            self.notify(self._still_converting("Back"), severity="warning", title="Not yet")
            return
        super().action_back(step)

    def leave_problem(self) -> str | None:
        typed = pasted_path(self.query_one("#model-source", Input).value)
        if not typed:  # else the model checked before, which the empty field no longer shows, would go on
            return NAME_IT
        if typed != self.session.get("model.pretrained"):
            self.action_check()  # typed but not checked yet: Next must not drop it for the model before
            return f"Checking {typed} first: Next again once it shows ✓."
        if self.converting == typed:
            return self._still_converting("Next")
        if self.checking is not None:
            return f"Still checking {self.checking}: Next again once it shows ✓ (its family decides which settings apply)."
        if self.failed_check is not None and not self.failure_said:
            self.failure_said = True  # said once: the model may be meant for another machine
            return f"The model check failed: {self.failed_check}. Fix it, or Next again goes on anyway."
        info = self.session.model_info
        if info is not None and info.source == self.session.get("model.pretrained") and not info.supported:
            return f"dbtui cannot train this model: {info.family}"
        if (info is not None and info.source == self.session.get("model.pretrained") and info.kind == "single-file"
                and info.supported and info.family_id == "flux" and self.query_one(FluxParts).named()):
            # The profile names the file alone: a run converts it with the file's own hub repository's parts.
            return (f"The Flux parts named here are used only by the {self.query_one('#model-convert', Button).label} "
                    "button: press it, or empty them to go on with the file's own hub repository's parts.")
        return None
