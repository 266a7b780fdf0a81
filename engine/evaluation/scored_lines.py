"""The best-step rule's lines of a run's events log (its starts, scored rounds and finishes), kept beside the log in
``RUN/.scored-lines.json`` with the length of log they were read from: `dbtui runs` lists many runs of long logs (300 of
300 MB took 2 minutes to search), of which a finished one no longer changes, and a live one only grows.

The index is trusted only while the log still begins as it did: the last bytes before that length read the same, and
where the log has not grown since, its modification time is the same (an edit that keeps its length); otherwise the
log is searched whole again. A run folder copied with its times reads the same log; one copied without them, a log
edited or an older dbtui's run with no index is searched once more and indexed anew.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from engine.events import marked_lines

INDEX_NAME = ".scored-lines.json"
SCORING_MARKERS = (b'"samples_scored"', b'"run_started"', b'"run_finished"')
_TAIL = 1 << 12  # bytes before the indexed length that must read the same (a dozen step lines)


def scoring_lines(events_file: Path) -> list[bytes]:
    """The lines of ``events_file`` that hold a scoring marker, in order, the last one maybe cut off (a line being
    written), read past the index's length only. Raises OSError."""
    events_file = Path(events_file)
    stat = events_file.stat()
    index = events_file.with_name(INDEX_NAME)
    with events_file.open("rb") as file:
        data = _read_index(index)
        known = _still_true(data, file, stat)
        start, lines = known if known is not None else (0, [])
        tail_start = max(start, stat.st_size - _TAIL)
        file.seek(tail_start)
        tail = file.read(stat.st_size - tail_start)
    cut = tail.rfind(b"\n")
    if cut < 0 and tail_start > start:  # a last line longer than the tail: searched, not indexed
        return lines + list(marked_lines(events_file, SCORING_MARKERS, stat.st_size, start))
    end = tail_start + cut + 1  # past the last whole line: the one after may be being written
    lines = lines + list(marked_lines(events_file, SCORING_MARKERS, end, start))
    if data is None or known is None or end != start or stat.st_size != data["size"]:
        _write_index(index, events_file, end, stat.st_mtime_ns, stat.st_size, lines)
    partial = tail[cut + 1:]
    return lines + ([partial] if any(marker in partial for marker in SCORING_MARKERS) else [])


def unread_bytes(events_file: Path) -> int:
    """How much of ``events_file`` a ``scoring_lines`` now would search: what its index does not stand for."""
    try:
        stat = Path(events_file).stat()
        with Path(events_file).open("rb") as file:
            known = _still_true(_read_index(Path(events_file).with_name(INDEX_NAME)), file, stat)
    except OSError:
        return 0
    return stat.st_size - (known[0] if known is not None else 0)


def _read_index(index: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(index.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    fields = {"end": int, "size": int, "mtime_ns": int, "tail": str, "lines": list}
    if not isinstance(data, dict) or any(type(data.get(name)) is not kind for name, kind in fields.items()):
        return None  # damaged, or another version's
    return data if all(isinstance(line, str) for line in data["lines"]) else None


def _still_true(data: dict[str, Any] | None, file: Any, stat: os.stat_result) -> tuple[int, list[bytes]] | None:
    """Where the index's lines are still those of the log's first ``end`` bytes: (end, lines)."""
    if data is None or not 0 <= data["end"] <= data["size"] <= stat.st_size:
        return None
    if stat.st_size == data["size"] and stat.st_mtime_ns != data["mtime_ns"]:
        return None  # edited in place, or copied without its times: read again
    if _tail_hash(file, data["end"]) != data["tail"]:
        return None
    return data["end"], [line.encode("utf-8", "surrogateescape") for line in data["lines"]]


def _tail_hash(file: Any, end: int) -> str:
    start = max(0, end - _TAIL)
    file.seek(start)
    return hashlib.sha256(file.read(end - start)).hexdigest()


def _write_index(index: Path, events_file: Path, end: int, mtime_ns: int, size: int, lines: list[bytes]) -> None:
    """Written whole or not at all (a trainer's checkpoint and `dbtui runs` may write it at once); not where the run
    folder cannot be written (another user's runs): the log is searched each time then."""
    tmp = index.with_name(f".scored-lines.{os.getpid()}.tmp")
    try:
        with events_file.open("rb") as file:
            tail = _tail_hash(file, end)
        data = {"end": end, "size": size, "mtime_ns": mtime_ns, "tail": tail,
                "lines": [line.decode("utf-8", "surrogateescape") for line in lines]}
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, index)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
