"""The scores of [evaluation]'s rounds under the loss curve, and the best step so far (once the run has ended, the
best step, said of how it ended).

Hidden until a ``samples_scored`` event arrives, so a run without scoring looks as it always did.
A round comes every few hundred steps, so the plot is redrawn on each one rather than on a timer.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.color import Color
from textual.containers import Vertical
from textual.widgets import Static
from textual_plotext import PlotextPlot

from dbtui.widgets.loss_plot import step_ticks
from engine.evaluation.best import BestStep, ScoredRounds
from engine.events import RunFinished, RunStarted, SamplesScored

# (score key, legend label, colour), in the report's order (engine/runs/report.py). Colours are RGB,
# not the terminal's named ones, which themes may draw alike; subject fidelity and its parts are blues.
SERIES = (
    ("subject", "subject", "#38bdf8"),
    ("dino", "DINO", "#818cf8"),
    ("clip_i", "CLIP-I", "#c084fc"),
    ("clip_t", "CLIP-T", "#4ade80"),
    ("class_drift", "drift", "#f87171"),
)
BEST_COLOUR = "#fbbf24"


def rgb(colour: str) -> tuple[int, int, int]:
    """plotext's form of a hex colour."""
    return Color.parse(colour).rgb


class ScoreHistory:
    """The run's scored rounds as the best-step rule counts them (``ScoredRounds``): the latest per step, of the newest
    base round's settings, since a base round scored again for other [evaluation] settings starts another scale."""

    def __init__(self) -> None:
        self.scored = ScoredRounds()

    def add(self, event: RunStarted | SamplesScored | RunFinished) -> None:
        self.scored.add(event)

    @property
    def rounds(self) -> dict[int, dict[str, float | None]]:
        return self.scored.rounds  # finite scores only: plotext refuses an infinite value

    def series(self, key: str) -> tuple[list[int], list[float]]:
        points = [(step, scores[key]) for step, scores in self.rounds.items() if scores.get(key) is not None]
        return [step for step, _ in points], [value for _, value in points]  # type: ignore[misc]

    @property
    def best(self) -> BestStep | None:
        return self.scored.best


def best_line(best: BestStep | None, ended: str | None = None) -> str:
    """The best step, of a run still training (``ended`` None: "so far"), or of one that ended with status ``ended``:
    a finished run's is its best step; a stopped, failed or crashed one's is the best it reached before that."""
    if ended is None:
        return f"best step so far: {best.step}" if best else "best step so far: none yet"
    said = {"finished": "best step", "stopped": "best step when stopped"}.get(ended, f"best step before it {ended}")
    return f"{said}: {best.step if best else 'none'}"


class ScorePlot(PlotextPlot):
    def __init__(self, history: ScoreHistory, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.history = history
        self.drawn: dict[str, tuple[list[int], list[float]]] = {}  # what the last redraw plotted, by score
        self.ended: str | None = None  # the ended run's status, for the title's words; None while it trains

    def redraw(self) -> None:
        plt = self.plt
        plt.clear_data()
        best = self.history.best
        plt.title(f"scores · {best_line(best, self.ended)}")
        plt.frame(False)  # two more rows for the curves: the panel has about eight at 80×24
        self.drawn = {}
        for key, _, colour in SERIES[1:] + SERIES[:1]:  # subject fidelity last, drawn over its two parts
            steps, values = self.history.series(key)
            if steps:
                plt.plot(steps, values, marker="braille", color=rgb(colour))
                self.drawn[key] = (steps, values)
        # The scored steps themselves while they are few, else five whole steps across.
        ticks = step_ticks(sorted(self.history.rounds))
        plt.xticks(ticks, [str(tick) for tick in ticks])
        if best is not None:
            plt.vline(best.step, rgb(BEST_COLOUR))
        self.refresh()


class ScorePanel(Vertical):
    """A legend line over the score plot; shown from the first scored round on."""

    DEFAULT_CSS = """
    ScorePanel { height: 1fr; display: none; }
    ScorePanel.-scored { display: block; }
    ScorePanel > .legend { height: 1; padding: 0 1; }
    """

    def __init__(self, history: ScoreHistory, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.history = history

    def compose(self) -> ComposeResult:
        legend = Text()
        for _, label, colour in SERIES:
            legend.append("━", style=f"bold {colour}").append(f"{label} ")
        yield Static(legend, classes="legend")
        yield ScorePlot(self.history)

    def add(self, event: RunStarted | SamplesScored | RunFinished) -> None:
        """Take an event; a scored round shows the panel and redraws the plot, as does one that drops a branch's."""
        before = len(self.history.rounds)
        self.history.add(event)
        if isinstance(event, SamplesScored) or len(self.history.rounds) < before:
            self.add_class("-scored")
            self.query_one(ScorePlot).redraw()

    def end(self, status: str | None) -> None:
        """The run ended with ``status`` (None: it trains again, resumed): the title says "best step" of how it ended."""
        plot = self.query_one(ScorePlot)
        plot.ended = status
        if self.has_class("-scored"):
            plot.redraw()
