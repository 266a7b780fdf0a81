"""What the Training step's log says of a run's events: its start, phases, samples, scores, checkpoints and
warnings, and what a finished or stopped run left."""

from __future__ import annotations

from engine.events import (CheckpointSaved, CheckpointsRotated, Event, PhaseFinished, RunFailed, RunFinished, RunStarted,
                           SampleSaved, SamplesScored, Warning)
from engine.runs.score_words import sentence


def event_line(event: Event) -> str | None:
    """The log's line for ``event``, or None where the log says nothing of it (or the screen says it otherwise)."""
    if isinstance(event, RunStarted):
        resumed = f", resumed at step {event.resumed_from_step}" if event.resumed_from_step else ""
        return f"Run started: {event.total_steps} steps{resumed}"
    if isinstance(event, SamplesScored):
        return scores_line(event)
    if isinstance(event, PhaseFinished):
        ended = "stopped after" if event.stopped else "done in"
        return f"{event.phase.replace('_', ' ')} {ended} {event.seconds:.1f} s"
    if isinstance(event, SampleSaved):
        return f"Samples at step {event.step}"
    if isinstance(event, CheckpointSaved):
        return f"Checkpoint at step {event.step}: {event.path}"
    if isinstance(event, CheckpointsRotated):  # the log named its path: gone now, which `dbtui attach` said and this did not
        return sentence(event.said())
    if isinstance(event, Warning):
        return f"⚠ {event.message}" + (f" — {event.advice}" if event.advice else "")
    return None


def scores_line(event: SamplesScored) -> str:
    def score(key: str) -> str:
        return "–" if event.scores.get(key) is None else f"{event.scores[key]:.3f}"

    return (f"Scores at step {event.step}: subject {score('subject')} · CLIP-T {score('clip_t')} · "
            f"drift {score('class_drift')}")


def outputs_line(event: RunFinished) -> str:
    """What the run wrote, for its "Run finished:" line."""
    # "no outputs" after Stop & save read as if the stop had saved nothing: its checkpoint is in the hint.
    none = "no final export (a stopped run writes none)" if event.status == "stopped" else "no outputs"
    return "; ".join(f"{k}: {v}" for k, v in event.outputs.items()) or none


def earlier_end_line(event: RunFinished | RunFailed) -> str:
    """How an earlier attempt of a resumed run ended, for the log: its end is history, not the run's end."""
    if isinstance(event, RunFailed):
        at = f" at step {event.step}" if event.step is not None else ""
        return f"Earlier attempt: failed{at}: {event.reason}"
    return f"Earlier attempt: {event.status} at step {event.step}"
