"""The Textual app factory, shared by the CLI and the tests."""

from __future__ import annotations

import importlib
import shlex
from collections.abc import Iterable
from functools import partial

from textual import work
from textual.app import SystemCommand
from textual.notifications import SeverityLevel
from textual.binding import Binding
from textual.screen import Screen
from textual.worker import WorkerState, get_current_worker

from dbtui.conversions import Conversion, finishing_words, still_running
from dbtui.engine_facade import Engine, RealEngine
from dbtui.messages import HardwareFailed, HardwareKnown
from dbtui.output_disk import disk_path
from dbtui.session import STEPS, Session
from dbtui.widgets.ordered_keys import OrderedKeysApp

SCREENS_BY_STEP = {
    "hardware": "dbtui.screens.hardware:HardwareScreen",
    "model": "dbtui.screens.model:ModelScreen",
    "dataset": "dbtui.screens.dataset:DatasetScreen",
    "parameters": "dbtui.screens.parameters:ParametersScreen",
    "training": "dbtui.screens.training:TrainingScreen",
}
PROBE = "hardware"  # the hardware probe's worker group


def _load(spec: str) -> type:
    module, name = spec.split(":")
    return getattr(importlib.import_module(module), name)


class DbtuiApp(OrderedKeysApp):  # keys typed in a burst (SSH) are handled in order
    TITLE = "dbtui"
    SUB_TITLE = "DreamBooth for Stable Diffusion"
    CSS_PATH = "app.tcss"
    BINDINGS = [
        # Priority, so that F1 also explains the dialogs, and closes the help it opened.
        Binding("f1", "help", "Help", priority=True),
        # Not in the footer (80 columns hold only the everyday keys); in the palette and the help.
        Binding("ctrl+t", "toggle_dark", "Light/dark", show=False),
        Binding("ctrl+q", "quit", "Quit", priority=True),
        # Tab moves the focus here, before the keys typed after it are routed: see
        # docs/upstream/textual-focus-burst.md (a burst from SSH otherwise lands in the old field).
        # Textual leaves Tab to a widget that types it (a TextArea that indents).
        Binding("tab", "focus_next", show=False, priority=True),
        Binding("shift+tab", "focus_previous", show=False, priority=True),
    ]

    def __init__(self, engine: Engine, session: Session, image_renderer: str = "auto") -> None:
        super().__init__()
        self.engine = engine
        self.session = session
        # textual-image picks its renderer from the terminal; tests pin one for stable output.
        self.image_renderer = image_renderer
        self.conversions: list[Conversion] = []  # the Model step's conversions, the exports: waited for at exit
        self.run_notices: set[tuple[str, str]] = set()  # (title, message) of the notices of a run (run_notices.py)

    def on_mount(self) -> None:
        from dbtui.screens.start import StartScreen

        self.push_screen(StartScreen(self.session, self.engine), self._started)

    def _started(self, session: Session | None) -> None:
        if session is None:
            self.exit()
            return
        self.session = session
        self.push_screen(self._step_screen(session.step))

    def _step_screen(self, index: int) -> Screen:
        return _load(SCREENS_BY_STEP[STEPS[index]])(self.session, self.engine)

    def goto(self, index: int) -> None:
        """Show wizard step ``index``; before the first step comes the start screen again."""
        if index < 0:
            # From the app's own loop: a screen's answer goes to the node that pushed it, and the Back button's
            # handler runs on the step, gone by then (a choice on the start screen left a blank screen).
            self.call_next(self._back_to_start)
            return
        index = min(index, len(STEPS) - 1)
        self.session.step = index
        self.switch_screen(self._step_screen(index))

    def _back_to_start(self) -> None:
        from dbtui.screens.start import StartScreen

        self.pop_screen()
        self.push_screen(StartScreen(self.session, self.engine), self._started)

    @property
    def probing(self) -> bool:
        """Whether a hardware probe is under way."""
        return any(w.group == PROBE and w.state in (WorkerState.PENDING, WorkerState.RUNNING) for w in self.workers)

    def probe_hardware(self) -> None:
        """Probe this machine, measuring the free disk at the draft's output folder; a probe under way is replaced."""
        self._probe(disk_path(self.session.get("saving.output_dir") or "."))

    # The app's, not the hardware step's: Next does not wait for it, and a screen's worker's answer is lost with the
    # screen. The answer goes to the session and to every screen (HardwareKnown).
    @work(thread=True, exclusive=True, exit_on_error=False, group=PROBE)
    def _probe(self, path: str) -> None:
        worker = get_current_worker()
        try:
            report = self.engine.probe_hardware(path)
        except Exception as error:  # noqa: BLE001 - shown to the user, never a crash
            if not worker.is_cancelled:
                self.post_message(HardwareFailed(str(error)))
            return
        if not worker.is_cancelled:  # a re-check replaced it
            self.post_message(HardwareKnown(report))

    def on_hardware_known(self, message: HardwareKnown) -> None:
        self.session.hardware = message.report
        for screen in self.screen_stack:
            screen.post_message(HardwareKnown(message.report))

    def on_hardware_failed(self, message: HardwareFailed) -> None:
        self.notify(message.reason, title="Hardware check failed", severity="error", timeout=10)
        for screen in self.screen_stack:  # the hardware step's loading indicator waits for an answer
            screen.post_message(HardwareFailed(message.reason))

    def action_help(self) -> None:
        from dbtui.screens.help import HelpScreen

        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss(None)
        else:
            self.push_screen(HelpScreen(self.screen))

    def action_command_palette(self) -> None:
        """Ctrl+P in the help opened over the palette (F1 there) goes back to that palette: Textual looks for an open
        palette only on top, and a second one's id clashed with the first's (DuplicateIds crashed the app)."""
        from textual.command import CommandPalette

        from dbtui.screens.help import HelpScreen

        if isinstance(self.screen, HelpScreen) and any(isinstance(s, CommandPalette) for s in self.screen_stack):
            self.screen.dismiss(None)
        else:
            super().action_command_palette()

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = True) -> None:
        """Every notification as plain text, whatever the caller asked: they carry the user's paths, captions and
        names, where "[/]" crashed the app as markup and "[v2]" vanished; none of ours is styled."""
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=False)

    def action_quit(self) -> None:
        """Quitting never stops a run (the trainer is its own process): say where it goes on, as Detach does. A run
        still starting is not waited for here: its start's thread ends it before the process does (asyncio joins it)."""
        from dbtui.format import goes_on
        from engine.runs.folder import ACTIVE

        folder = self.session.run_folder
        if folder is None and self._run_starting():
            self._exit_saying(self._starting_words())
            return
        live = folder is not None and self.engine.run_status(folder) in ACTIVE  # a folder gone: "unknown"
        self._exit_saying(f"Quit; {goes_on(folder)}" if live else None)

    def _exit_saying(self, message: str | None) -> None:
        """Exit saying ``message``, and which conversions the process waits for: it would otherwise seem hung."""
        running = still_running(self.conversions)
        said = [message] if message else []
        self.exit(message="\n".join([*said, finishing_words(running)] if running else said) or None)

    def _run_starting(self) -> bool:
        """Whether a run's start is under way (Train a moment ago): its trainer not started yet."""
        from dbtui.messages import RUN_START

        return any(worker.group == RUN_START and not worker.is_finished for worker in self.workers)

    def _starting_words(self) -> str:
        """What the shell is told when the app quits before the run's start has answered: the process ends that start
        (a thread cannot be stopped, and one stopped half-way would leave a half-made run folder), which may take
        minutes behind another launch, and seemed hung where it was not said."""
        from engine.runs.folder import run_dir_for
        from engine.runs.launch_lock import LAUNCH_WAIT_S

        folder = run_dir_for(self.session.profile()).absolute()  # a start is under way: the draft is valid
        where = shlex.quote(str(folder))
        return (f"Quit while the run was still starting: dbtui finishes starting it before the shell comes back "
                f"(seconds, for its image checks; at most {LAUNCH_WAIT_S / 60:.0f} min more behind another launch into "
                f"its folder). "
                f"Then `dbtui runs {shlex.quote(str(folder.parent))}` says whether it trains in {folder}, `dbtui "
                f"attach {where}` follows it and `dbtui stop {where}` stops it.")

    def action_toggle_dark(self) -> None:
        self.theme = "textual-light" if self.current_theme.dark else "textual-dark"

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """Every key binding of the current screen is a palette command too."""
        yield from super().get_system_commands(screen)
        seen = {"quit", "command_palette"}
        for active in screen.active_bindings.values():
            binding = active.binding
            if not binding.description or binding.action in seen or not active.enabled:
                continue
            seen.add(binding.action)
            key = binding.key_display or binding.key
            yield SystemCommand(binding.description, f"{binding.description} ({key})",
                                partial(active.node.run_action, binding.action))
        yield from self._step_commands(screen)

    def _step_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """Going to another step passes the checks its keys do: any earlier step through Back's, the next one through
        Next's (a run's start among them); a step further on is reached by Next, step after step."""
        from dbtui.screens.base import WizardScreen

        if not isinstance(screen, WizardScreen):  # a dialog, or a screen over a step (captions): its own keys
            return
        for index, name in enumerate(STEPS[:screen.STEP + 2]):
            if index != screen.STEP:
                go = partial(screen.action_back, index) if index < screen.STEP else screen.action_next
                yield SystemCommand(f"Go to {name}", f"step {index + 1} of the wizard", go)


def make_app(engine: Engine | None = None, session: Session | None = None, *, image_renderer: str = "auto") -> DbtuiApp:
    """The app; tests inject a fake engine and a prepared session."""
    return DbtuiApp(engine or RealEngine(), session or Session(), image_renderer)
