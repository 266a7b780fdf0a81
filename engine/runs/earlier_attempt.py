"""An earlier attempt's files, set aside when a run starts afresh in its folder, put back when that launch fails.

An attempt that never checkpointed is started again from step 0: its log is kept beside the new one
(``events.STAMP.jsonl``), and so are its previews and scored rounds (``samples.STAMP``, ``evaluation.STAMP``), which
left in place the new run's report showed as its own steps, past where it ended. A launch refused after that (a full
disk writing the profile, a trainer that could not be started) puts them back: without ``events.jsonl`` the run
folder read as no run, or a crashed one, to ``dbtui runs``, ``attach``, ``report`` and the wizard.
"""

from __future__ import annotations

from pathlib import Path

from engine.runs.folder import RunFolder


def set_aside_attempt(folder: RunFolder) -> list[tuple[Path, Path]]:
    """Move the earlier attempt's log, previews and scored rounds aside; returns (where each was, where it went).
    One that fails partway puts back what it moved."""
    stamp = int(folder.events.stat().st_mtime)
    moved: list[tuple[Path, Path]] = []
    try:
        for earlier in (folder.samples, folder.path / "evaluation"):
            if earlier.is_dir() and any(earlier.iterdir()):
                moved.append((earlier, earlier.rename(earlier.with_name(f"{earlier.name}.{stamp}"))))
        folder.samples.mkdir(exist_ok=True)
        moved.append((folder.events, folder.events.rename(folder.events.with_name(f"events.{stamp}.jsonl"))))
    except BaseException:
        put_attempt_back(moved)
        raise
    return moved


def put_attempt_back(moved: list[tuple[Path, Path]]) -> None:
    """Undo ``set_aside_attempt``: each file or folder back where it was."""
    for was, now in reversed(moved):
        now.rename(was)  # samples: onto the empty folder made for the new run, which a rename replaces


def earlier_logs(folder: RunFolder) -> list[Path]:
    """The logs of the earlier attempts set aside in ``folder`` (``events.STAMP.jsonl``), the latest first."""
    stamps = (path.name.split(".")[1] for path in folder.path.glob("events.*.jsonl"))
    return [folder.path / f"events.{stamp}.jsonl" for stamp in sorted((s for s in stamps if s.isdigit()), key=int,
                                                                      reverse=True)]
