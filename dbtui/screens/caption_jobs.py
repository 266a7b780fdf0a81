"""The caption screen's jobs over every caption (reading them, a bulk edit, its undo, auto-caption): their names,
their failures' titles, and the worker body that runs one and reads the captions again. No widgets here."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.message import Message

from dbtui.messages import EngineEvent, WorkDone, WorkFailed
from dbtui.screens.caption_edits import CaptionEdits
from dbtui.screens.caption_rows import CaptionRows
from engine.events import Event, PhaseProgress

AUTO = "auto-captioning"  # the one job that leaves the editor open: people caption by hand while it runs
READING = "reading the captions"  # the first job, started on mount: the list fills when it ends
REREADING = "reading the captions again"  # after a job that failed, which may have stopped half-way
# Each job's worker (its WorkDone.what), and the title of its failure.
JOB_TITLES = {"read": "Captions not read", "reread": "Captions not read again", "bulk": "Bulk edit not done",
              "undo": "Nothing undone", "autocaption": "Auto-caption failed"}

Job = Callable[[Callable[[Event], None]], Any]


def tag_job(store: Any, operation: str, tag: str) -> tuple[str, str, Job]:
    """A bulk edit that adds (``operation`` "add") or removes ``tag`` in every caption: its name, its worker, its run."""
    if operation == "add":
        return f"adding tag '{tag}'", "bulk", lambda emit: store.add_tag(tag, emit=emit)
    return f"removing tag '{tag}'", "bulk", lambda emit: store.remove_tag(tag, emit=emit)


def run_caption_job(what: str, run: Job, store: Any, images: list[Path], rows: CaptionRows, edits: CaptionEdits,
                    post: Callable[[Message], object]) -> None:
    """Run ``run`` with its events posted, then read every caption again: posts WorkDone(what, (its result, the
    rows read)), or WorkFailed."""
    total = len(images)
    try:
        if what in ("bulk", "undo"):  # no save runs meanwhile; read here, as 3,000 captions freeze the screen
            edits.before_write(*map(rows.file_of, images))
        result = run(lambda event: post(EngineEvent(event)))
        fresh = CaptionRows.read(store, images, lambda done: post(
            EngineEvent(PhaseProgress(phase="captions", done=done, total=total))))
    except Exception as error:  # noqa: BLE001 - shown to the user (a folder it cannot write, no captioner)
        post(WorkFailed(what, str(error)))
        return
    post(WorkDone(what, (result, fresh)))
