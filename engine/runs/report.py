"""``RUN/report.html``: one self-contained page that says how a run went and which step to keep.

The trainer process writes it when a run ends (finished or stopped) and ``dbtui report RUN``
writes it again from the folder alone (a crashed run, a run copied elsewhere). It reads
events.jsonl, samples/, evaluation/, checkpoints/ and profile.toml, and never imports torch.

Nothing in the page loads from elsewhere: the curves are inline SVG and the pictures are base64
JPEGs, each scaled down to ``IMAGE_CAP`` pixels on its long side, so it opens from disk, over
``ssh -L`` or through ``dbtui serve`` with no network.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import DbtuiError
from engine.evaluation.best import BestStep, branch_point, forget_after, scored_round, step_number
from engine.events import RunFailed, RunFinished, RunStarted, SampleSaved, SamplesScored, StepEnded, Warning
from engine.runs.file_errors import said_as_run_files_error
from engine.runs.folder import ACTIVE, RunFolder, holds_a_run, unreadable
from engine.runs.follow import MovedRun, events_missing, no_event_read
from engine.runs.keep import checked_checkpoints, how_to_keep
from engine.runs.report_chart import Series, bucket_means, escape, line_chart
from engine.runs.report_pictures import IMAGE_CAP, figure, grid_of, step_folders
from engine.runs.report_output import check_output
from engine.runs.score_words import ScoreTrack, measures, score, scores_legend, sentence, uncompared_said
from engine.runs.sinks import read_events
from engine.support.json_file import is_number

REPORT = "report.html"
LOSS_POINTS = 600  # the loss curve's points at most (bucket means), whatever the number of steps

# (score key, label, colour, line width, dashed), in the dashboard's order (dbtui/widgets/score_plot.py).
SCORES = (
    ("subject", "subject fidelity", "#2563eb", 2.6, False),
    ("dino", "DINO", "#60a5fa", 1.4, True),
    ("clip_i", "CLIP-I", "#a855f7", 1.4, True),
    ("clip_t", "CLIP-T (prompt fidelity)", "#16a34a", 2.0, False),
    ("class_drift", "class drift", "#dc2626", 2.0, False),
)


class NotARunError(DbtuiError):
    """The folder holds no run to report on."""


@dataclass
class RunRecord:
    """What the report shows, read from a run folder."""

    folder: RunFolder
    status: str
    started: RunStarted | None = None
    losses: dict[int, tuple[float, float]] = field(default_factory=dict)  # step → (loss, smoothed)
    rounds: dict[int, SamplesScored] = field(default_factory=dict)  # step → its latest scores
    sampled: dict[int, list[str]] = field(default_factory=dict)  # step → its preview grid's prompts, where the log says
    warnings: list[str] = field(default_factory=list)
    end: RunFinished | RunFailed | None = None
    first_time: float | None = None
    last_time: float | None = None
    best: BestStep | None = None
    scores: ScoreTrack = field(default_factory=ScoreTrack)  # the rounds as the best-step rule counts them
    compared: set[int] = field(default_factory=set)  # the scored steps the rule compares (the newest base's settings)
    kept: list[int] = field(default_factory=list)  # the steps of whole checkpoints
    damaged: list[int] = field(default_factory=list)  # of checkpoints an export would refuse: never offered
    set_aside: set[int] = field(default_factory=set)  # steps read only of a branch a resume left: their pictures too

    @property
    def last_step(self) -> int:
        return max(self.losses, default=0)

    @property
    def finished_at(self) -> int | None:
        """The last step of a run that finished: its model is in outputs/ (None: stopped, failed or running)."""
        return self.end.step if isinstance(self.end, RunFinished) and self.end.status == "finished" else None


def read_run(run_dir: Path) -> RunRecord:
    folder = RunFolder(Path(run_dir))
    missing = events_missing(folder)  # as attach says it: an empty log made a page of no steps
    if missing is not None:
        if holds_a_run(folder.path):  # `dbtui runs` lists it by its state.json
            raise NotARunError(f"{missing}; there is nothing to report")
        raise NotARunError(f"'{run_dir}' is not a run folder (no events.jsonl); `dbtui runs` lists them")
    record = RunRecord(folder, folder.status())
    read = 0
    for event in map(MovedRun(folder), read_events(folder.events)):  # one at a time: a log may be hundreds of MB
        read += 1
        record.first_time = record.first_time or event.time
        record.last_time = event.time
        record.scores.add(event)
        point = branch_point(event)
        record.set_aside |= forget_after(record.losses, point) | forget_after(record.rounds, point)
        if isinstance(event, RunStarted):
            record.started, record.end = event, None  # a resume: what ended the run before is history
        elif isinstance(event, StepEnded) and step_number(event.step) is not None and is_number(event.loss) and is_number(event.smoothed_loss):
            record.losses[event.step] = (event.loss, event.smoothed_loss)
            record.set_aside.discard(event.step)
        elif (scored := scored_round(event)) is not None:  # a damaged line's round is skipped, as the rule skips it
            record.rounds[scored.step] = scored
            record.set_aside.discard(scored.step)
        elif isinstance(event, SampleSaved) and step_number(event.step) is not None and event.prompts:
            record.sampled[event.step] = event.prompts
        elif isinstance(event, Warning):
            text = event.message + (f" — {event.advice}" if event.advice else "")
            if text not in record.warnings:
                record.warnings.append(text)
        elif isinstance(event, (RunFinished, RunFailed)):
            record.end = event
    if not read:  # blank or damaged lines only: as empty a log as one of no bytes
        raise NotARunError(f"{no_event_read(folder)}; there is nothing to report")
    record.best = record.scores.best
    record.compared = set(record.scores.rounds)
    record.kept, record.damaged = checked_checkpoints(folder)
    return record


def write_report(run_dir: Path, output: Path | None = None) -> Path:
    """Write ``RUN/report.html``, or ``output`` (replaced if there), atomically: a reader never sees half a page; returns
    its path. A run folder that cannot be written is told of ``output``."""
    if output is not None:
        check_output(output, REPORT)
    try:
        record = read_run(run_dir)
        page = render(record)
    except PermissionError as error:  # another user's events, samples or checkpoints: said, as attach says it
        raise unreadable(Path(error.filename or run_dir), error) from None
    run = shlex.quote(str(record.folder.path))
    if output is None:
        target, written = record.folder.path / REPORT, record.folder.path
        then = (f"then `dbtui report {run}` writes it; or write it elsewhere now, with `dbtui report {run} --output "
                "FILE`")
    else:
        target, written = output, output.parent
        then = f"then `dbtui report {run} --output {shlex.quote(str(output))}` writes it"
    partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with said_as_run_files_error(written, then=then):
            try:
                # A file name of bytes that are not UTF-8 (a lone surrogate, in a warning or a failure's reason) as an escape.
                partial.write_text(page, encoding="utf-8", errors="backslashreplace")
                os.replace(partial, target)
            except OSError as error:
                # Said of the page asked for: its hidden temporary, named, was a file the user never saw or gave.
                raise OSError(error.errno, error.strerror, str(target)) from None
    finally:
        # After a failed write or rename, nothing half-written stays; on a read-only disk the removal fails as well,
        # and must not hide the error that says so.
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
    return target


def write_report_at_end(run_dir: Path) -> None:
    """The trainer's last act: the report, never a reason for a finished run to count as failed."""
    try:
        write_report(run_dir)
    except Exception as error:  # noqa: BLE001 - the model is saved; a page is not worth a failed run
        print(f"dbtui trainer: report.html was not written ({type(error).__name__}: {error}); "
              f"`dbtui report {shlex.quote(str(run_dir))}` tries again", file=sys.stderr, flush=True)


# -- the page ------------------------------------------------------------------------------


def render(record: RunRecord) -> str:
    # `dbtui report .` from inside the run folder: "." has no name, and says nothing of where the page came from.
    where = os.path.abspath(record.folder.path)
    name = Path(where).name
    body = "\n".join([
        f"<h1>{escape(name)}</h1>",
        _summary(record),
        _choice(record),
        _loss_section(record),
        _scores_section(record),
        _pictures_section(record),
        _warnings_section(record),
        _profile_section(record),
        f'<p class="note">Written by dbtui on {_when(time.time())} from {escape(where)}. '
        f"Pictures are scaled to at most {IMAGE_CAP} px.</p>",
    ])
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>dbtui report: {escape(name)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n")


def _profile(record: RunRecord) -> dict:
    """The profile the run trained with; before its first step (a run that crashed, failed or was stopped while
    setting up) no run_started says it, and the folder's profile.toml, which the launcher wrote, does."""
    if record.started:
        return record.started.profile
    try:
        profile = tomllib.loads(record.folder.profile.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}
    # A hand edit may leave a section a plain value (model = "x"), which the page would then fail to read.
    return profile if all(isinstance(profile.get(key, {}), dict) for key in ("model", "training", "evaluation")) else {}


def _summary(record: RunRecord) -> str:
    profile = _profile(record)
    total = record.started.total_steps if record.started else 0
    rows = [("status", record.status), ("steps", f"{record.last_step} of {total}" if total else str(record.last_step)),
            ("model", str(profile.get("model", {}).get("pretrained", "–"))),
            ("method", str(profile.get("training", {}).get("method", "–")))]
    if record.first_time and record.last_time:
        rows.append(("time", f"{_when(record.first_time)} to {_when(record.last_time)} "
                             f"({_duration(record.last_time - record.first_time)})"))
    if isinstance(record.end, RunFinished):
        rows += [(f"output: {kind}", path) for kind, path in record.end.outputs.items()]
    elif isinstance(record.end, RunFailed):
        rows.append(("failed", record.end.reason + (f" — {record.end.advice}" if record.end.advice else "")))
    if record.kept or record.damaged:  # a step saved with `dbtui save` and never scored was named nowhere else
        run, one = shlex.quote(os.path.abspath(record.folder.path)), len(record.kept) == 1
        steps = f"step{'' if one else 's'} {', '.join(map(str, record.kept))}"
        kept = (f"{steps}: `dbtui export {run} --step {record.kept[0] if one else 'N'}` writes {'its' if one else 'one’s'} "
                "model") if record.kept else "none whole"
        damaged = f"; damaged (an export refuses them): {', '.join(map(str, record.damaged))}" if record.damaged else ""
        rows.append(("checkpoints kept", kept + damaged))
    cells = "".join(f"<tr><th>{escape(key)}</th><td>{escape(value)}</td></tr>" for key, value in rows)
    return f'<table class="facts">{cells}</table>'


def _why_not_scored(record: RunRecord) -> str:
    """Why a run has no scored round: scoring was off, or on but never scored (the scorers would not load)."""
    evaluation = _profile(record).get("evaluation", {})
    if not evaluation.get("enabled"):
        return ("This run was not scored. With <code>[evaluation] enabled = true</code> every preview round is scored "
                "and the best step is named here.")
    if record.warnings:
        return ("Scoring was on, but no round was scored: where the warnings below name the scorer models, they say "
                "what to change; otherwise the run ended before its first scored round.")
    return "Scoring was on, but the run ended before its first scored round."


def _choice(record: RunRecord) -> str:
    """The chosen step and why, or why there is none."""
    if not record.rounds:
        return f"<h2>Which step to keep</h2><p>{_why_not_scored(record)} Compare the previews below.</p>"
    best = record.best
    if best is None:
        # The trainer writes the page after its last event, while it still holds the run: ended by that event.
        ended = record.end is not None or record.status not in ACTIVE
        why = record.scores.why_none(ended=ended) or ""
        return f"<h2>Which step to keep</h2><p>{escape(sentence(why))}. Compare the previews below.</p>"
    keep = how_to_keep(best, record.kept, record.finished_at, record.damaged, record.folder.events)
    uncompared = uncompared_said(best)
    return (f'<h2>Which step to keep: <span class="best">step {best.step}</span></h2>'
            f"<p><strong>{escape(sentence(measures(best)))}</strong>.</p>"
            "<p>Why: among the steps scored after the base model, those whose prompt fidelity (CLIP-T) stayed at "
            f"least the start ({best.start_clip_t:.3f}) minus {best.tolerance:g} qualify; the one with the highest "
            "subject fidelity (the mean of DINO and CLIP-I) is kept, the earliest on a tie. Past it, DreamBooth "
            "usually trades prompts for copies of the training pictures.</p>"
            + (f"<p>{escape(sentence(uncompared))}.</p>" if uncompared else "")
            + f"<p>{escape(sentence(keep.advice(os.path.abspath(record.folder.path))))}.</p>")


def _loss_section(record: RunRecord) -> str:
    if not record.losses:
        return "<h2>Loss</h2><p>No training step was recorded.</p>"
    steps = sorted(record.losses)
    raw = bucket_means([(s, record.losses[s][0]) for s in steps], LOSS_POINTS)
    smooth = bucket_means([(s, record.losses[s][1]) for s in steps], LOSS_POINTS)
    chart = line_chart([Series("loss", raw, "#9ca3af", 1.0), Series("smoothed", smooth, "#0e7490", 2.4)],
                       label="loss over steps", marker=record.best.step if record.best else None)
    return f"<h2>Loss</h2>{chart}"


def _scores_section(record: RunRecord) -> str:
    if not record.rounds:
        return ""
    steps = sorted(record.rounds)
    # Rounds of other [evaluation] settings measure on another scale: the chart, like the best-step rule, leaves them out.
    charted = [s for s in steps if s in record.compared]
    series = [Series(label, [(s, record.rounds[s].scores[key]) for s in charted if record.rounds[s].scores.get(key) is not None],
                     colour, width, dashed=dashed, dots=True) for key, label, colour, width, dashed in SCORES]
    chart = line_chart([s for s in series if s.points], label="scores over steps",
                       marker=record.best.step if record.best else None)
    if len(charted) < len(steps):
        chart += ('<p class="note">Rounds scored under earlier [evaluation] settings (other prompts, scorers or seeds) '
                  "are not in the chart, and not compared when choosing the step to keep.</p>")
    header = "".join(f"<th>{escape(label)}</th>" for _, label, *_ in SCORES)
    rows = []
    # The finished run's last step has its model in outputs/ (`dbtui export --step` takes it): a blank cell said none.
    for step in steps:
        scores = record.rounds[step].scores
        cells = "".join(f"<td>{score(scores.get(key))}</td>" for key, *_ in SCORES)
        kept = ("kept" if step in record.kept else "damaged" if step in record.damaged else
                "in outputs/" if step == record.finished_at else "")
        classes = ' class="best"' if record.best and step == record.best.step else ""
        note = " (base model)" if step == 0 else ""
        if step not in record.compared:
            classes, note = ' class="other"', ' <span class="note">not compared (scored under earlier [evaluation] settings)</span>'
        rows.append(f"<tr{classes}><td>{step}{note}</td>{cells}<td>{kept}</td></tr>")
    table = f'<table class="scores"><tr><th>step</th>{header}<th>checkpoint</th></tr>{"".join(rows)}</table>'
    return f"<h2>Scores</h2>{chart}{table}{_scores_meaning(record)}"


def _scores_meaning(record: RunRecord) -> str:
    evaluation = _profile(record).get("evaluation", {})
    return f'<p class="note">{escape(scores_legend([str(evaluation.get(key, "")) for key in ("clip_model", "dino_model")]))}</p>'


def _pictures_section(record: RunRecord) -> str:
    samples = step_folders(record.folder.samples)
    evaluation = step_folders(record.folder.path / "evaluation")
    steps = sorted((set(samples) | set(evaluation)) - record.set_aside)
    if not steps:
        return "<h2>Previews</h2><p>No preview was saved (sampling.num_images is 0, or no round came yet).</p>"
    cards = [_picture_card(record, step, samples.get(step), evaluation.get(step)) for step in steps]
    return "<h2>Previews</h2>" + "\n".join(cards)


def _picture_card(record: RunRecord, step: int, samples: Path | None, evaluation: Path | None) -> str:
    best = record.best is not None and step == record.best.step
    title = f"step {step}" + (" (base model)" if step == 0 else "") + (" — best" if best else "")
    parts = [f'<section class="card{" best" if best else ""}" id="step-{step}"><h3>{escape(title)}</h3><div class="row">']
    grid = grid_of(samples)
    if grid is not None:
        # Named as the scoring grid's are; a log of an older dbtui does not say them.
        prompts = ", ".join(f"“{prompt}”" for prompt in record.sampled.get(step, []))
        parts.append(figure(grid, "preview grid, one row per sample prompt" + (f": {prompts}" if prompts else "")))
    eval_grid = grid_of(evaluation)
    if eval_grid is not None:
        scored = record.rounds.get(step)
        prompts = ", ".join(f"“{row.get('prompt', '')}”" for row in scored.prompts) if scored else ""
        parts.append(figure(eval_grid, "evaluation images, one row per prompt" + (f": {prompts}" if prompts else "")))
    parts.append("</div></section>")
    return "".join(parts)


def _warnings_section(record: RunRecord) -> str:
    if not record.warnings:
        return ""
    items = "".join(f"<li>{escape(text)}</li>" for text in record.warnings)
    return f"<h2>Warnings</h2><ul>{items}</ul>"


def _profile_section(record: RunRecord) -> str:
    try:
        # Edited by hand in another encoding: shown with its odd bytes marked, where reading it as UTF-8 stopped the page.
        text = record.folder.profile.read_bytes().decode("utf-8", errors="replace")
    except OSError:
        return "<h2>Profile</h2><p>profile.toml is missing from the run folder.</p>"
    return f"<h2>Profile</h2><p>The resolved profile the trainer ran (profile.toml).</p><pre>{escape(text)}</pre>"


# -- words -----------------------------------------------------------------------------------


def _when(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(seconds))


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


STYLE = """
:root { color-scheme: light dark; --fg: #1f2937; --bg: #ffffff; --muted: #6b7280; --line: #e5e7eb; --card: #f9fafb; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #e5e7eb; --bg: #111827; --muted: #9ca3af; --line: #374151; --card: #1f2937; }
}
body { font: 15px/1.5 system-ui, sans-serif; color: var(--fg); background: var(--bg);
       max-width: 1100px; margin: 2em auto; padding: 0 1em; }
h1 { margin-bottom: .2em; }
h2 { margin-top: 1.6em; border-bottom: 1px solid var(--line); }
table { border-collapse: collapse; margin: .6em 0; }
th, td { padding: .2em .7em; text-align: left; border-bottom: 1px solid var(--line); }
table.scores td, table.scores th { text-align: right; }
tr.best td { background: rgba(245, 158, 11, .18); font-weight: 600; }
tr.other td { color: var(--muted); }
.best { color: #b45309; }
code, pre { font-family: ui-monospace, monospace; }
pre { background: var(--card); padding: 1em; overflow-x: auto; border: 1px solid var(--line); }
figure { margin: .5em 0; }
figure img { max-width: 100%; height: auto; }
img.zoomed { image-rendering: pixelated; }
figcaption, .note { color: var(--muted); font-size: 13px; }
svg.chart { width: 100%; height: auto; }
svg .grid { stroke: var(--line); }
svg .tick { font-size: 11px; fill: var(--muted); }
.key { margin-right: 1.2em; white-space: nowrap; }
.swatch { display: inline-block; width: 1.4em; height: 4px; margin-right: .4em; vertical-align: middle; }
.card { background: var(--card); border: 1px solid var(--line); padding: .2em 1em .6em; margin: .8em 0; }
.card.best { border: 2px solid #f59e0b; }
.row { display: flex; flex-wrap: wrap; gap: 1.5em; align-items: flex-start; }
.row figure { max-width: 48%; }
"""
