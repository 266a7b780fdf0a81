"""A word when a fit test on a CPU will take long: caching a tiny Flux's 14 pictures at 512 px took about a minute
each on a busy 2-core machine (its VAE at that size), where at 64 px the whole test takes seconds. Judged by the pace
measured, never by a guess from the settings: a phase's projected length, from its first items or steps."""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.events import Event, PhaseProgress, PhaseStarted, StepEnded

SLOW_S = 120.0  # a set-up phase (or the steps measured) projected past this is worth the hint
SMALL_RESOLUTION = 64  # what to fit at instead: a built-in tiny model's own size, and seconds on a CPU


@dataclass
class SlowFitHint:
    """Fed a CPU fit test's events, says once (``__call__``'s str) that it will be slow and what to do instead.
    ``steps``: the steps it measures; ``resolution``: dataset.resolution; ``set_it``: how the caller names a change of
    it ("--set dataset.resolution=64"); ``estimate_shown``: the memory meter's estimate is in view, ``estimate_at``
    where ("above" the CLI's fit test, "on the VRAM line" of the wizard's); ``set_back``: the change is made to what
    the run will train with (the wizard's form, where a --set is the fit command's alone), so say to undo it."""

    steps: int
    resolution: int
    set_it: str
    estimate_shown: bool
    estimate_at: str = "above"
    set_back: bool = False
    said: bool = False
    started: dict[str, float] = field(default_factory=dict)  # each phase's start time

    def __call__(self, event: Event) -> str | None:
        if self.said:
            return None
        if isinstance(event, PhaseStarted):
            self.started[event.phase] = event.time
            return None
        projected = None
        if isinstance(event, PhaseProgress) and event.phase != "training" and event.total and event.done:
            projected = (event.time - self.started.get(event.phase, event.time)) / event.done * event.total
            what = f"{event.phase.replace('_', ' ')} ({event.total} items)"
        elif isinstance(event, StepEnded) and "training" in self.started:
            projected = (event.time - self.started["training"]) / event.step * self.steps
            what = f"the {self.steps} steps measured"
        if projected is None or projected < SLOW_S:
            return None
        self.said = True
        return self.hint(what, projected)

    def hint(self, what: str, projected: float) -> str:
        minutes = f"about {projected / 60:.0f} min" if projected >= 90 else f"about {projected:.0f} s"
        said = f"on this CPU, {what} will take {minutes} at {self.resolution} px"
        if self.resolution > SMALL_RESOLUTION:
            said += (f"; to measure sooner, fit at a smaller resolution ({self.set_it}={SMALL_RESOLUTION}), "
                     "whose speed is that size's, not the run's")
            if self.set_back:
                said += f", then set it back to {self.resolution} before you train"
        if self.estimate_shown:  # what a fit test is for, and one on a CPU cannot measure
            said += f"; a CPU measures no GPU memory: the meter's estimate {self.estimate_at}, made without a GPU, is that figure"
        return said
