"""The loss curve: every step kept, drawn downsampled and at most a few times a second.

plotext's cost grows with points (7 ms at 100, 234 ms at 10k), so the plot shows about two
points per column and redraws only on a timer when something changed.
"""

from __future__ import annotations

import threading

from textual_plotext import PlotextPlot

REDRAW_S = 0.25


class LossHistory:
    """(step, loss, smoothed) lists in step order; the follow worker appends (and cuts at a resume), the plot reads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.steps: list[int] = []
        self.loss: list[float] = []
        self.smoothed: list[float] = []

    def append(self, step: int, loss: float, smoothed: float) -> None:
        with self._lock:
            if self.steps and step <= self.steps[-1]:
                return  # replayed events after re-attaching
            self.steps.append(step)
            self.loss.append(loss)
            self.smoothed.append(smoothed)

    def forget_after(self, step: int) -> None:
        """Drop the steps after ``step``: a resume from it left the branch they were trained on."""
        with self._lock:
            kept = sum(1 for seen in self.steps if seen <= step)
            del self.steps[kept:], self.loss[kept:], self.smoothed[kept:]

    def snapshot(self) -> tuple[list[int], list[float], list[float]]:
        with self._lock:
            return list(self.steps), list(self.loss), list(self.smoothed)

    def __len__(self) -> int:
        return len(self.steps)


def downsample(xs: list[int], ys: list[float], points: int) -> tuple[list[float], list[float]]:
    """Bucket means: ``points`` points at most, the shape kept."""
    if len(xs) <= points or points < 2:
        return list(map(float, xs)), list(ys)
    size = len(xs) / points
    out_x, out_y = [], []
    for index in range(points):
        lo, hi = int(index * size), max(int((index + 1) * size), int(index * size) + 1)
        out_x.append(sum(xs[lo:hi]) / (hi - lo))
        out_y.append(sum(ys[lo:hi]) / (hi - lo))
    return out_x, out_y


def step_ticks(steps: list[int]) -> list[int]:
    """Whole steps for an x axis: the steps themselves while they are few, every step while they fit, else five
    across (plotext's own ticks split a short run's steps into quarters)."""
    if len(steps) <= 5:
        return steps
    if steps[-1] - steps[0] <= 8:  # five rounded across would skip one (1 2 4 5 6)
        return list(range(steps[0], steps[-1] + 1))
    return sorted({round(steps[0] + i * (steps[-1] - steps[0]) / 4) for i in range(5)})


class LossPlot(PlotextPlot):
    def __init__(self, history: LossHistory, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.history = history
        self._drawn = -1
        self.redraws = 0

    def on_mount(self) -> None:
        super().on_mount()
        self.plt.title("loss")
        self.set_interval(REDRAW_S, self.redraw)

    def redraw(self) -> None:
        if len(self.history) == self._drawn or not self.size.width:
            return
        steps, loss, smoothed = self.history.snapshot()
        self._drawn = len(steps)
        width = max(self.size.width * 2, 10)
        plt = self.plt
        plt.clear_data()
        plt.title("loss (smoothed bold)")
        x, y = downsample(steps, loss, width)
        plt.plot(x, y, marker="braille", color="gray")
        x, y = downsample(steps, smoothed, width)
        plt.plot(x, y, marker="hd", color="cyan")
        ticks = step_ticks(steps)
        plt.xticks(ticks, [str(tick) for tick in ticks])
        self.redraws += 1
        self.refresh()
