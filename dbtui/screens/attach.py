"""Pick a run folder to watch, with each run's status."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from dbtui.engine_facade import Engine, RunSummary
from engine.errors import DbtuiError
from engine.profile.fields import expanded_path
from engine.runs.paused import PAUSED
from engine.runs.runs_nearby import run_dirs_near
from dbtui.widgets.key_footer import KeyFooter
from dbtui.widgets.ordered_keys import OrderedInput


class AttachScreen(ModalScreen[Path | None]):
    HELP = """\
## Attach to a run

The runs in the folder above, with their status, progress and, when `[evaluation]` scored
them, the best step so far. Enter on a run opens its dashboard; type another folder and
press Enter to list its runs. Esc goes back. Attaching only watches: the run is not changed.
"""
    CSS_PATH = "attach.tcss"
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    @dataclass
    class RunsRead(Message):
        """The runs in ``output_dir`` (or why they cannot be listed), read by the worker."""

        output_dir: str
        runs: list[RunSummary]
        skipped: list[str]
        error: str = ""
        elsewhere: tuple[str, ...] = ()  # with no runs: folders near here that hold some (the demo's dbtui-demo/runs)

    def __init__(self, engine: Engine, output_dir: str) -> None:
        super().__init__()
        self.engine = engine
        self.output_dir = output_dir
        self._asked = ""  # the folder whose listing is awaited
        # The folder last asked for, as the field wrote it: once its runs are shown they take the keys, unless the
        # field was typed in since.
        self._submitted = output_dir

    def compose(self) -> ComposeResult:
        with Vertical(id="attach-box"):
            yield Static("Attach to a run", classes="title")
            yield OrderedInput(self.output_dir, placeholder="folder that holds run folders", id="attach-dir")
            yield Static("", id="attach-note", classes="help")
            yield OptionList(id="attach-list")
        yield KeyFooter()

    def on_mount(self) -> None:
        self._list(self.output_dir)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        # Enter on a typed folder is done typing: its runs take the keys once shown, as the note's "Enter attaches" says.
        self._submitted = event.value
        self._list(event.value.strip())

    def _list(self, output_dir: str) -> None:
        options = self.query_one(OptionList)
        options.clear_options()
        self._asked, options.loading = "", False  # a listing still being read is of a folder no longer asked for
        if not output_dir:
            self.query_one("#attach-note", Static).update("Type the folder that holds your run folders (a profile's "
                                                          "saving.output_dir, e.g. runs) and press Enter.")
            return
        try:
            output_dir = expanded_path(output_dir)  # "~/runs" and "$RUNS" as a profile's saving.output_dir reads them
        except ValueError as error:
            self.query_one("#attach-note", Static).update(Content(f"The folder {error}."))
            return
        # Off the main thread: each run's best step reads its whole events log the first time, seconds for a long run.
        self._asked = output_dir
        options.loading = True
        self.query_one("#attach-note", Static).update(Content(f"Reading the runs in {output_dir.rstrip('/')}/…"))
        self._read_runs(output_dir)

    @work(thread=True, exclusive=True, exit_on_error=False, group="attach-runs")
    def _read_runs(self, output_dir: str) -> None:
        skipped: list[str] = []  # a run folder a disk's or network's error hides: said, not dropped in silence
        try:
            runs = self.engine.list_runs(output_dir, skipped.append)
            elsewhere = () if runs else _run_folders_near(output_dir)
        except DbtuiError as error:  # a folder of another user's
            self.post_message(self.RunsRead(output_dir, [], skipped, str(error)))
            return
        except Exception as error:  # noqa: BLE001 - said on the screen, where the worker's error would leave it loading
            self.post_message(self.RunsRead(output_dir, [], skipped, f"The runs could not be listed: "
                                            f"{type(error).__name__}: {error}"))
            return
        self.post_message(self.RunsRead(output_dir, runs, skipped, elsewhere=elsewhere))

    def on_attach_screen_runs_read(self, message: RunsRead) -> None:
        if message.output_dir != self._asked:
            return  # a folder typed since (its own listing follows), or one asked twice and already listed
        self._asked = ""  # listed: the other reading of a folder asked again adds its runs no second time
        options = self.query_one(OptionList)
        options.loading = False
        if message.error:
            self.query_one("#attach-note", Static).update(Content(message.error))
            return
        runs, skipped = message.runs, message.skipped
        for run in runs:
            progress = f"{run.step}/{run.total_steps}" if run.total_steps else ""
            if progress and run.resumes_from is not None:
                progress += f" · resumes from {run.resumes_from or 'the start'}"
            best = f"  best {run.best_step}" if run.best_step is not None else ""
            status = PAUSED if run.paused else run.status  # as `dbtui runs` shows it: "running" did not move
            options.add_option(Option(Content(f"{run.path.name:<28} {status:<9} {progress:<11}{best}".rstrip()), id=str(run.path)))
        if runs:
            options.highlighted = 0
            # A list still loading cannot take the focus: it is given once the runs are shown, unless another folder
            # is being typed meanwhile.
            if self.query_one("#attach-dir", Input).value == self._submitted:
                options.focus()
        shown = message.output_dir.rstrip("/") + "/"
        note = f"{len(runs)} run(s) in {shown} (Enter attaches)" if runs else f"no runs in {shown}"
        if message.elsewhere:
            note += f"; runs are in {', '.join(message.elsewhere)}: type it above and press Enter"
        if skipped:
            note += f"; left out, as unreadable: {skipped[0]}" + (f" (and {len(skipped) - 1} more)" if skipped[1:] else "")
        self.query_one("#attach-note", Static).update(Content(note))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(Path(event.option.id))


def _run_folders_near(output_dir: str) -> tuple[str, ...]:
    """Folders below the working folder that hold runs, other than ``output_dir``, as typed: after `dbtui demo`, whose
    run is in dbtui-demo/runs, the list of runs/ was empty with no word of where the demo's run went."""
    asked = Path(output_dir).resolve()
    here = Path.cwd()
    return tuple(str(path.relative_to(here)) for path in run_dirs_near(here) if path.resolve() != asked)[:3]
