"""Showing engine events in a terminal: a Rich live dashboard or progress bars, or plain lines for logs.

Plain lines when stdout is not a terminal (nohup, pipes), under CI, or when asked: Rich's
live display writes only its last frame to a file.
"""

from __future__ import annotations

import os
import sys
import threading
from collections import deque
from typing import Any, TextIO

from dbtui.cli.printable import printable
from engine.evaluation.best import branch_point, forget_after
from engine.events import Event
from engine.runs.score_words import ScoreTrack, measures

SPARK = "▁▂▃▄▅▆▇█"
PHASE_KINDS = ("phase_started", "phase_progress", "phase_finished")
REASON_FOLLOWS = " (the reason follows on stderr)"  # the failure's note in the panel, its reason printed after it


def make_console(**options: Any) -> Any:
    """A Rich console whose output closed under it (`dbtui … | head`) raises BrokenPipeError, which the CLI's boundary
    ends with status 0 as for plain prints; Rich's own handler exits with status 1, which fails a `set -o pipefail` script."""
    from rich.console import Console

    class PipedConsole(Console):
        def on_broken_pipe(self) -> None:
            self.quiet = True
            raise BrokenPipeError

    return PipedConsole(**options)


def want_plain(force: bool = False, stream: TextIO | None = None) -> bool:
    """Plain lines rather than live ones on ``stream`` (standard output by default)."""
    shown = stream or sys.stdout
    return force or not shown.isatty() or bool(os.environ.get("CI")) or os.environ.get("TERM") == "dumb"


def sparkline(values: list[float], width: int = 60) -> str:
    """A one-line loss chart (hand-written: Rich has no chart and plotext is too heavy here)."""
    if not values:
        return ""
    step = max(1, len(values) // width)
    points = [sum(values[i : i + step]) / len(values[i : i + step]) for i in range(0, len(values), step)][-width:]
    low, high = min(points), max(points)
    span = (high - low) or 1.0
    return "".join(SPARK[min(len(SPARK) - 1, int((p - low) / span * (len(SPARK) - 1)))] for p in points)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


def warning_said(event: Event) -> str:
    """A Warning's message and advice, without the "warning:" that a line of its own starts with."""
    # The trainer's words can quote a file name, whose control characters must not reach the terminal.
    return printable(event.message) + (f" — {printable(event.advice)}" if event.advice else "")


def describe(event: Event) -> str | None:
    """The one-line text of an event, for plain logs (None: not worth a line by itself)."""
    kind = event.kind
    if kind == "phase_started":
        return f"[{event.phase}] started {event.description}".rstrip()
    if kind == "phase_progress":
        return f"[{event.phase}] {event.done}/{event.total}" if event.total else f"[{event.phase}] {event.done}"
    if kind == "phase_finished":
        return f"[{event.phase}] {'stopped after' if event.stopped else 'done in'} {event.seconds:.1f}s"
    if kind == "run_started":
        from engine.runs.summary import run_summary

        resumed = f", resumed at step {event.resumed_from_step}" if event.resumed_from_step else ""
        said = [run_summary(event.profile, event.hardware),
                f"training {event.total_steps} steps on {event.num_processes} process(es){resumed}"]
        return "\n".join(line for line in said if line)
    if kind == "step_ended":
        vram = f" vram {event.vram_allocated_peak_mb:.0f}MB" if event.vram_allocated_peak_mb else ""
        rss = f" ram {event.rss_mb:.0f}MB" if event.rss_mb else ""
        return (f"step {event.step}/{event.total_steps} loss {event.loss:.4f} (avg {event.smoothed_loss:.4f}) "
                f"lr {event.lr:.2e} {event.it_per_s:.2f} it/s eta {_duration(event.eta_s)}{vram}{rss}")
    if kind == "sample_saved":
        return f"samples at step {event.step}: {event.grid or ', '.join(event.paths)}"
    if kind == "checkpoint_saved":
        return f"checkpoint at step {event.step}: {event.path}"
    if kind == "checkpoints_rotated":
        return event.said()
    if kind == "warning":
        return f"warning: {warning_said(event)}"
    if kind == "run_finished":
        if event.status == "stopped":
            return f"stopped at step {event.step}"
        outputs = "\n".join(f"  {name}: {path}" for name, path in event.outputs.items())
        return f"finished {event.step} steps in {_duration(event.seconds)}; outputs:\n{outputs}"
    if kind == "run_failed":
        return f"failed: {printable(event.reason)}" + (f"\n  advice: {printable(event.advice)}" if event.advice else "")
    return None


class PhaseDisplay:
    """The one display of the engine's phases (PhaseStarted, PhaseProgress, PhaseFinished).

    On a terminal: a Rich progress bar per phase, and a line when a phase ends. Otherwise plain
    lines: the start, progress at each tenth, the end. The convert and dataset commands show it by
    itself (a ``with`` block draws the bars, and warnings go to stderr); the training dashboard
    draws its bars inside its own panel, and the plain printer uses its lines.
    """

    def __init__(self, *, plain: bool | None = None, console: Any = None, out: TextIO | None = None) -> None:
        self.plain = want_plain() if plain is None else plain
        self.out = out or sys.stdout
        self._tenths: dict[str, int] = {}  # plain: the last tenth of each phase printed
        # plain: (time, done) where each phase's pace is measured from: its last line printed (or its start)
        self._paced_from: dict[str, tuple[float, int]] = {}
        self._tasks: dict[str, Any] = {}  # on a terminal: each phase's bar
        self.console, self.bars = console, None
        if not self.plain:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                       TimeRemainingColumn)

            self.console = console or make_console()
            # markup off: "[phase]" is text here, not a Rich style.
            self.bars = Progress(TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TimeRemainingColumn(), console=self.console, transient=True)

    def __enter__(self) -> PhaseDisplay:
        if self.bars is not None:
            self.bars.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.bars is not None:
            self.bars.stop()

    def renderable(self) -> Any:
        """The bars of the phases under way, for a panel that draws them itself; None when there are none."""
        return self.bars.make_tasks_table(self.bars.tasks) if self._tasks else None

    def __call__(self, event: Event) -> None:
        kind = event.kind
        if kind == "warning":
            print(describe(event), file=sys.stderr, flush=True)
        elif kind in PHASE_KINDS and self.bars is not None:
            self._bar(event)
        elif kind in PHASE_KINDS:
            self._line(event)

    def _line(self, event: Event) -> None:
        eta = ""
        if event.kind == "phase_started":
            self._paced_from[event.phase] = (event.time, 0)
            self._tenths.pop(event.phase, None)  # started again (a resume after a crash in it): its tenths from the first
        elif event.kind == "phase_progress":
            tenth = event.done * 10 // event.total if event.total else -1
            if tenth <= self._tenths.get(event.phase, 0) and event.done != event.total:
                return
            self._tenths[event.phase] = tenth
            eta = self._eta(event)
            self._paced_from[event.phase] = (event.time, event.done)
        elif event.kind == "phase_finished":
            self._tenths.pop(event.phase, None)
            self._paced_from.pop(event.phase, None)
        print(describe(event) + eta, file=self.out, flush=True)

    def _eta(self, event: Event) -> str:
        """", eta 4m10s" at the pace since the line before (a tenth of the phase), as the bars' time remaining
        paces recent items; none where that took under a second (the phase's lines come fast enough) or without a
        total. The whole phase's pace said far too little time left where its first items went fast, e.g. a caching
        pass whose first pictures were cached by an earlier run. Timed by the events' own times: `dbtui attach`
        replays a run's history at once, and a phase begun before it looked had its earlier items counted as done
        in no time (an ETA many times too short)."""
        since, done_then = self._paced_from.setdefault(event.phase, (event.time, event.done))
        elapsed = event.time - since
        if not event.total or not done_then < event.done < event.total or elapsed < 1:
            return ""
        return f", eta {_duration(elapsed / (event.done - done_then) * (event.total - event.done))}"

    def _bar(self, event: Event) -> None:
        phase = event.phase
        if event.kind == "phase_finished":
            task = self._tasks.pop(phase, None)
            if task is not None:
                self.bars.remove_task(task)
            # Printed, not logged: log() would add a source location such as console.py:160.
            self.console.print(describe(event), markup=False, highlight=False)
            return
        if event.kind == "phase_started" or phase not in self._tasks:  # progress of a phase begun before we looked
            description = f"[{phase}] {event.description if event.kind == 'phase_started' else ''}".rstrip()
            if phase in self._tasks:
                self.bars.remove_task(self._tasks[phase])
            self._tasks[phase] = self.bars.add_task(description, total=event.total)
        if event.kind == "phase_progress":
            self.bars.update(self._tasks[phase], completed=event.done, total=event.total)


class PlainPrinter:
    """One line per phase (and at each tenth of its progress), sample, scored round and checkpoint, and a step line
    every N steps, on ``out``; warnings and a failure's reason on stderr."""

    def __init__(self, every: int = 10, out: Any = None, scores: ScoreTrack | None = None):
        self.every = every
        self.out = out or sys.stdout
        self.phases = PhaseDisplay(plain=True, out=self.out)
        # A round's line names the start its CLIP-T is measured from; ``scores``: a resume's earlier rounds.
        self.scores = scores or ScoreTrack()

    def __enter__(self) -> PlainPrinter:
        return self

    def __exit__(self, *exc: Any) -> None:
        pass

    def __call__(self, event: Event) -> None:
        self.scores.add(event)
        if event.kind in PHASE_KINDS:
            self.phases(event)
            return
        if event.kind == "samples_scored":
            said = self.scores.said(event.step)
            if said is not None:  # else a damaged line's round, which the rule skips too
                print(f"scores at {said}", file=self.out, flush=True)
            return
        if event.kind == "step_ended" and not (event.step == 1 or event.step % self.every == 0 or event.step == event.total_steps):
            return
        text = describe(event)
        if text:
            # A failure's reason and a warning go where warnings go in every command (PhaseDisplay): `2>err.log`
            # keeps why a run failed; the progress stays on ``out``.
            said_apart = event.kind in ("warning", "run_failed")
            print(text, file=sys.stderr if said_apart else self.out, flush=True)


class RichDashboard:
    """A live panel: progress, loss chart, speed, memory, phases, latest samples and scores, the best step, and
    warnings."""

    def __init__(self, title: str, console: Any = None, scores: ScoreTrack | None = None):
        from rich.live import Live

        self.title = title
        self.console = console or make_console()
        self.losses: dict[int, float] = {}  # step → smoothed loss, in step order: a branch a resume left is dropped
        self.last_step: Any = None
        self.phases = PhaseDisplay(plain=False, console=self.console)
        # Warnings apart from checkpoint and run notes, so that checkpoints saved every few steps never
        # push a warning out of view; a warning said again shows once.
        self.warnings: deque[str] = deque(maxlen=3)
        self.notes: deque[str] = deque(maxlen=2)
        self.samples = ""
        self.scores = scores or ScoreTrack()  # ``scores``: a resume's earlier rounds, which its best step is chosen among
        self.ended = False  # the run said its last word: no step qualifies, rather than none yet
        self.failure = ""  # a failure's reason and advice: said on stderr once the panel is drawn for good
        # Live's refresh, 4 times a second on its own thread, draws the state as it is then: a panel redrawn only for
        # an event kept the state before the last events of a burst (an attach's replay; a run's last step, then its
        # export) for as long as no other event came. The lock keeps that thread from reading what an event changes.
        self._lock = threading.Lock()
        self.live = Live(console=self.console, refresh_per_second=4, transient=False, get_renderable=self._drawn)

    def __enter__(self) -> RichDashboard:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.live.__exit__(*exc)  # stopping draws the last state
        if self.failure:  # after the panel, not over it: `2>err.log` keeps why the run failed, as --plain's does
            print(self.failure, file=sys.stderr, flush=True)

    def _drawn(self) -> Any:
        with self._lock:
            return self._render()

    def _render(self) -> Any:
        from rich.panel import Panel
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        table = Table.grid(padding=(0, 1))
        table.add_column(style="bold cyan", justify="right")
        table.add_column()
        step = self.last_step
        if step is not None:
            table.add_row("step", f"{step.step}/{step.total_steps}  epoch {step.epoch + 1}")
            table.add_row("", ProgressBar(total=step.total_steps, completed=step.step, width=50))
            table.add_row("loss", f"{step.loss:.4f}   smoothed {step.smoothed_loss:.4f}")
            table.add_row("chart", sparkline(list(self.losses.values())))
            table.add_row("lr", f"{step.lr:.2e}")
            table.add_row("speed", f"{step.it_per_s:.2f} it/s   ETA {_duration(step.eta_s)}")
            memory = f"RAM {step.rss_mb:.0f} MB" if step.rss_mb else ""
            if step.vram_allocated_peak_mb:
                # Each may be null in the public format (another writer's line): the reserved peak is said where given.
                reserved = f" (reserved {step.vram_reserved_peak_mb:.0f})" if step.vram_reserved_peak_mb is not None else ""
                memory = f"VRAM peak {step.vram_allocated_peak_mb:.0f} MB{reserved}   " + memory
            table.add_row("memory", memory)
        phases = self.phases.renderable()
        if phases is not None:
            table.add_row("phases", phases)
        if self.samples:
            table.add_row("samples", Text(self.samples))
        if self.scores.rounds:
            best = self.scores.best
            table.add_row("scores", Text(self.scores.said(max(self.scores.rounds)) or ""))
            table.add_row("best step", Text(f"{best.step} — {measures(best)}" if best else
                                            self.scores.why_none(ended=self.ended) or ""))
        for warning in self.warnings:
            table.add_row("warning", Text(warning, style="yellow"))
        for note in self.notes:
            table.add_row("", Text(note))
        return Panel(table, title=self.title)

    def __call__(self, event: Event) -> None:
        if event.kind in PHASE_KINDS and (event.phase != "training" or event.kind == "phase_finished"):
            # Outside the lock: a finished phase's line is printed through the Live, whose refresh holds its own lock
            # while it takes ours. The bars are Rich's, which lock themselves.
            self.phases(event)  # the steps have their own bar (from step_ended); a training phase bar would sit at 0
        with self._lock:
            self._take(event)

    def _take(self, event: Event) -> None:
        kind = event.kind
        forget_after(self.losses, branch_point(event))
        self.scores.add(event)
        if kind in ("run_started", "run_finished", "run_failed"):
            self.ended = kind != "run_started"  # a resume's start: the run goes on
        if kind == "run_started" and self.failure:
            # A failed run resumed (`dbtui attach` replays it): the failure is an earlier attempt's, not the last word
            # to say on stderr once the panel ends, which read as if the run had failed again.
            self.failure = ""
            self.notes = deque((f"earlier attempt {note.removesuffix(REASON_FOLLOWS)}"
                                if note.endswith(REASON_FOLLOWS) else note for note in self.notes), maxlen=self.notes.maxlen)
        if kind == "step_ended":
            self.last_step = event
            self.losses[event.step] = event.smoothed_loss
        elif kind == "sample_saved":
            self.samples = event.grid or ", ".join(event.paths)
        elif kind == "warning":  # its row is labelled "warning" already
            text = warning_said(event)
            if text in self.warnings:
                self.warnings.remove(text)
            self.warnings.append(text)
        elif kind == "run_failed":
            self.failure = describe(event) or ""
            at = f" at step {event.step}" if event.step is not None else ""
            self.notes.append(f"failed{at}{REASON_FOLLOWS}")
        elif kind in ("checkpoint_saved", "run_finished", "run_started"):
            self.notes.append(describe(event) or "")


def make_display(title: str, *, plain: bool = False, every: int = 10, scores: ScoreTrack | None = None) -> Any:
    """``scores``: the rounds scored before the events shown (a resume's earlier attempts')."""
    return PlainPrinter(every, scores=scores) if want_plain(plain) else RichDashboard(title, scores=scores)
