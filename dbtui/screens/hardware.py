"""Step 1: what this machine can train, and the preset that fits it."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.content import Content
from textual.widgets import Button, LoadingIndicator, Static

from engine.hardware.machine import DEMO_TIP, unmeasured_size, unmeasured_text

from dbtui.messages import HardwareFailed, HardwareKnown
from dbtui.output_disk import disk_path, output_dir_is_file
from dbtui.presets import PRESET_NAMES, advice_family_of, guessed_note, preset_label
from dbtui.screens.base import WizardScreen
from dbtui.session import Session
from dbtui.widgets.hardware_table import hardware_table
from dbtui.widgets.step_body import StepBody


class HardwareScreen(WizardScreen):
    STEP = 0
    CSS_PATH = "hardware.tcss"
    BINDINGS = [Binding("r", "probe", "Re-check"), Binding("d", "demo", "Use the demo")]
    HELP = """\
## Step 1 of 5: Hardware

What this machine can train: the GPU and its memory, the driver and CUDA build, the memory
savers (bitsandbytes, xformers), RAM and the free disk at the output folder. The verdict
names the preset that fits; the Parameters step applies it.

To do: read the verdict, then Ctrl+N. **r** checks again after you free or add a GPU.

Watch out: without an NVIDIA GPU a real model takes days; **d** switches to the demo, or
make the profile here and train it on a rented GPU.
"""

    def compose_body(self) -> ComposeResult:
        with StepBody():
            yield Static("Hardware check", classes="title")
            yield LoadingIndicator(id="hw-loading")
            yield Static(id="hw-table")
            yield Static(id="hw-verdict")
            with Horizontal(id="hw-buttons"):
                yield Button("Re-check", id="hw-probe", compact=True)
                # Offered once the probe said there is no GPU (_show): a GPU machine was offered it while probing.
                demo = Button("Use the demo", id="hw-demo", variant="primary", compact=True)
                demo.display = False
                yield demo

    def on_mount(self) -> None:
        if self.session.hardware is None:
            self.action_probe()
        else:
            self._show(self.session.hardware)

    def action_probe(self) -> None:
        self.query_one("#hw-loading").display = True
        self.app.probe_hardware()

    def on_hardware_known(self, message: HardwareKnown) -> None:
        self._show(message.report)

    def on_hardware_failed(self, message: HardwareFailed) -> None:
        self.query_one("#hw-loading").display = False
        # Whether there is a GPU is not known: the demo is offered, as a machine without one (whose probe more often
        # fails) had no button left to go on with.
        self.query_one("#hw-demo").display = not self.session.demo
        again = "\nPress r to check again." if self.session.demo else "\nPress r to check again, or Use the demo."
        self.query_one("#hw-verdict", Static).update(
            Content.assemble(("Hardware check failed: ", "bold red"), message.reason, again))

    def _show(self, report) -> None:
        self.query_one("#hw-loading").display = False
        # As `dbtui hardware` refuses it: a file's disk, measured, was said to be room for the runs.
        output_dir = self.session.get("saving.output_dir") or "."
        problem = output_dir_is_file(disk_path(output_dir), "saving.output_dir")
        self.query_one("#hw-table", Static).update(hardware_table(report.hardware, problem))
        cpu_only = not report.hardware.gpus
        self.query_one("#hw-demo").display = cpu_only and not self.session.demo
        if cpu_only and not self.session.demo:
            self.query_one("#hw-demo").focus()
        if unloadable := self.session.model_load_problems():
            # As `dbtui hardware --profile` refuses it: back here from a damaged file, its card was advised SD1.x's
            # presets "once the model step has checked yours", which it had.
            self.query_one("#hw-verdict", Static).update(Content.assemble(
                ("No preset is advised: the model cannot load.", "bold"), "\n", " ".join(p.message for p in unloadable),
                "\nChoose another model, or mend this one, on the Model step (Ctrl+N)."))
            return
        sentence, name, fits, family = self._advice(report)
        label = preset_label(name, family, self.session.trains_prior) if name in PRESET_NAMES else name
        preset = "[b]$label[/b]" if fits else "none, as even the smallest, [b]$label[/b], does not fit"
        largest = None if cpu_only else unmeasured_size(family, self.session.trains_at)
        if largest is not None:  # a smaller size's figures picked it: Parameters and `dbtui hardware` pick none
            preset = (f"none: {unmeasured_text(largest, self.session.trains_at)} (Parameters says how to estimate its "
                      "own)")
        # No GPU: the advice is the CPU demo, for no family; with one, a preset's figures are its model's.
        guessed = None if cpu_only else guessed_note(self.session)  # a hub id not downloaded: advised for its name's family
        for_model = ("\n$guessed" if guessed else "" if self.session.advised_family is not None or self.session.demo
                     or cpu_only else "\nThis advice is for SD1.x; once the model step has checked yours, Parameters recommends for it.")
        advice = f"Recommended preset: {preset}{for_model}"
        if cpu_only:
            sentence = sentence.removesuffix(f" {DEMO_TIP}")  # the wizard's way into the demo is its button
        if cpu_only and not self.session.demo:
            # The CPU demo's preset is offered in the demo alone: a new profile's Parameters has none for here.
            advice = ("No preset to recommend for training here: make the profile here and train it on a machine with "
                      "an NVIDIA GPU (a rented one), or press [b]Use the demo[/b] to see everything work on a tiny model.")
        # The engine's words (a card's name) and the user's (the model's path) are values: in the markup, "[$x]" in
        # them vanished as a variable.
        self.query_one("#hw-verdict", Static).update(Content.from_markup(
            "[b]$sentence[/b]\n" + advice, sentence=sentence, label=label, guessed=guessed or ""))

    def _advice(self, report) -> tuple[str, str, bool, str]:
        """(the verdict, its preset, whether that fits, the advice family) for the model the model step checked, as the
        draft trains, with prior preservation or without, as `dbtui hardware --profile` judges it: back here from an
        SDXL model, the probe's SD1.5 advice said "full fine-tune with text-encoder training" on a 24 GB card, and a
        Flux profile without prior preservation was told flux-lora-16gb on a 16 GB card, judged with it."""
        family = advice_family_of(self.session.advised_family, self.session.get("model.pretrained"), self.session.trains_at)
        prior = self.session.trains_prior
        if family == "sd" and (prior or not report.hardware.gpus):  # the probe's own advice: SD1.5's, with prior preservation
            return report.sentence, report.preset, report.fits, family
        from engine.hardware.machine import too_small, verdict

        sentence, preset = verdict(report.hardware, family, prior)
        return sentence, preset, not too_small(report.hardware, preset, family, prior), family

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return not (action == "demo" and self.session.demo)  # no "Use the demo" key in the demo

    def action_demo(self) -> None:
        if self.session.demo:
            return
        demo = Session.for_demo()
        demo.hardware, demo.profiles_dir = self.session.hardware, self.session.profiles_dir
        self.app.session = demo
        self.session = demo
        self.notify("Switched to the demo: tiny built-in model and images.")
        self.query_one("#hw-demo").display = False
        self.refresh_bindings()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "hw-probe":
            self.action_probe()
        elif event.button.id == "hw-demo":
            self.action_demo()
        else:
            super().on_button_pressed(event)
