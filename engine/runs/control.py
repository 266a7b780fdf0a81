"""The control channel: a viewer drops a request file into RUN/control/; the trainer acts on it
at the next step boundary and deletes it. Plain files work from any shell (`touch RUN/control/stop`),
survive the viewer going away, and need no server.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engine.errors import DbtuiError
from engine.events import marked_lines_from_the_end
from engine.runs.folder import RunFolder

REQUESTS = ("stop", "save", "sample")


def makes_previews(profile: Mapping[str, Any]) -> bool:
    """Whether a run of ``profile`` (its settings as a dict: a run_started event's, or a loaded profile dumped) renders
    anything when asked to sample now: previews, or an [evaluation] round's images (``PreviewRounds.sample``); settings
    not said count as ones that do."""
    return bool(profile.get("sampling", {}).get("num_images", 1) or profile.get("evaluation", {}).get("enabled"))


def request(folder: RunFolder, what: str) -> Path:
    """Ask the trainer of ``folder`` to stop (after saving), save a checkpoint, or sample now."""
    if what not in REQUESTS:
        raise DbtuiError(f"unknown request '{what}'; use one of {', '.join(REQUESTS)}")
    path = folder.control / what
    tmp = folder.control / f".{what}.{os.getpid()}.tmp"
    try:
        folder.control.mkdir(parents=True, exist_ok=True)
        tmp.write_text("", encoding="utf-8")
        os.replace(tmp, path)
    except OSError as error:
        raise DbtuiError(f"cannot leave the {what} request in {folder.control} ({error.strerror}): run this as the user "
                         f"who started the run, or `touch {path}` as that user") from None
    return path


def save_kept_words(folder: RunFolder) -> str:
    """What becomes of a checkpoint asked for now (`dbtui save`, the dashboard's c), as one sentence from the run's
    profile; "" where it cannot be read. The rotation deletes it as any other (engine.runs.rotation), which the user,
    who asked for it to keep, found out only once it was gone."""
    from engine.profile import ProfileError
    from engine.runs.stored_profile import run_profile

    try:
        profile = run_profile(folder)
    except ProfileError:
        return ""
    keep = profile.saving.keep_last_n
    unless = ", unless it is the best-scored step's" if profile.evaluation.enabled else ""
    return (f"The run keeps its latest {keep} checkpoint{'s' * (keep != 1)} (saving.keep_last_n): this one is deleted "
            f"once {keep} newer {'are' if keep != 1 else 'is'} saved{unless}; `dbtui export {shlex.quote(str(folder.path))} "
            "--step STEP` keeps its model for good.")


def take_requests(folder: RunFolder) -> set[str]:
    """The pending requests, removed from the folder (the trainer calls this between steps)."""
    taken = set()
    for what in REQUESTS:
        path = folder.control / what
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        taken.add(what)
    return taken


def requests_left(folder: RunFolder) -> dict[str, tuple[int, int, int]]:
    """The requests in ``folder`` now, each by its file (device, inode, modification time): the launcher's note, as it
    takes the launch lock, of those asked of a trainer that is gone (``drop_requests``)."""
    left = {}
    for what in REQUESTS:
        with contextlib.suppress(OSError):  # one that cannot be read cannot be dropped either: drop_requests says so
            found = (folder.control / what).stat()
            left[what] = (found.st_dev, found.st_ino, found.st_mtime_ns)
    return left


def drop_requests(folder: RunFolder, left: Mapping[str, tuple[int, int, int]] | None = None) -> None:
    """Remove every request, or those still the very files ``left`` noted (``requests_left``). The launcher calls this
    holding the launch lock, with no trainer live: each one there as it took the lock was asked of a trainer killed
    before it could act, and would stop or sample the new one unasked; one asked since is a new file (``request``),
    asked of this launch (`dbtui stop` right after `dbtui run --detach`). Files, not times, tell them apart: a clock
    skewed across NFS kept a dead trainer's stop dated in the future, after the launch."""
    for what in REQUESTS:
        path = folder.control / what
        try:
            if left is not None:
                found = path.stat()
                if left.get(what) != (found.st_dev, found.st_ino, found.st_mtime_ns):
                    continue
            path.unlink()
        except FileNotFoundError:
            continue


def trained_since(events: Path, since: float) -> bool:
    """Whether the events log has a step ended at ``since`` or later: the trainer started then has trained a step. Until
    it has, it takes a stop at once and ends before its first step (set-up, caching, the base scoring round) with
    nothing to save. Only the latest step_ended line counts, read back from the end a block at a time: a long run's log
    holds a line a step. A log that cannot be read counts as trained, as before this was asked, and so does a
    log deleted under a running trainer (which goes on training: its stop saves a checkpoint). The line is found by
    the event's quoted name and confirmed parsed: another writer's JSON may space it otherwise."""
    try:
        for line in marked_lines_from_the_end(events, (b'"step_ended"',)):
            try:
                data = json.loads(line)
                if data["event"] == "step_ended":
                    return float(data["time"]) >= since
            except (ValueError, KeyError, TypeError):
                continue  # a half-written or damaged line: the one before it
    except OSError:
        return True
    return False


def training_end(folder: RunFolder) -> str:
    """How the live trainer of ``folder`` ended its training phase, as its events log says since it started: "" while it
    trains, "stopped" where a stop ended it (what is left is closing: a stopped run writes no final export or previews),
    "finished" where it trained every step (what is left is the final export and preview/scoring round). Either way it
    reads no request any more (they are read at step boundaries). A log that cannot be read counts as still training,
    as before this was asked."""
    state = folder.read_state()
    if state is None:
        return ""
    try:
        for line in marked_lines_from_the_end(folder.events, (b'"step_ended"', b'"phase_finished"')):
            try:
                data = json.loads(line)
                if float(data["time"]) < state.started or data["event"] == "step_ended":
                    return ""
                if data["event"] == "phase_finished" and data["phase"] == "training":
                    return "stopped" if data.get("stopped") else "finished"
            except (ValueError, KeyError, TypeError):
                continue  # a half-written or damaged line: the one before it
    except OSError:
        return ""
    return ""


def after_training_words(folder: RunFolder) -> str:
    """What the live trainer of ``folder`` does now that its training is over, as one clause naming the run; "" while it
    trains (it then reads requests). A stopped run writes no final export or previews: it said so of a stop's end too."""
    end = training_end(folder)
    if end == "finished":
        return (f"the trainer in {folder.path} has ended its training and is writing what follows it (the final export "
                "and preview/scoring round); it ends once they are done")
    return f"the trainer in {folder.path} was stopped and is closing: {stop_end_words(folder)}" if end else ""


def stop_end_words(folder: RunFolder) -> str:
    """What a stop's end of the live trainer of ``folder`` leaves: no final export, and the checkpoint it resumes from."""
    from engine.runs.checkpoints import complete_checkpoints

    state = folder.read_state()
    command = f"`dbtui resume {shlex.quote(str(folder.path))}`"
    if state is None or trained_since(folder.events, state.started):
        saved = f"its stop saved a checkpoint of its last step; {command} trains on from there"
    elif complete_checkpoints(folder):  # a resume stopped before its first step: its checkpoint is where it began
        saved = f"it stopped before its first step, with nothing new to save; {command} trains on from its checkpoint"
    else:
        saved = f"it stopped before its first step, with no checkpoint; {command} trains it from the start"
    return f"a stopped run writes no final export or previews, and {saved} once it has ended"
