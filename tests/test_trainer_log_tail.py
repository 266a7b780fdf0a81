"""The end of machine 0's trainer log, shown where the trainer ended without a last event (`watch._log_tail`), is read
from the end a block at a time: read whole from the start's offset, a 100 MB log took 310 MiB and 6 s."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from dbtui.cli.watch import _log_tail
from engine.runs.folder import RunFolder

LINE = b"step 12: loss 0.1234 " + b"x" * 60 + b"\r" + b"progress 50%" + b"\n"


def _log(tmp_path: Path, steps: int) -> tuple[RunFolder, int]:
    """A run folder whose log holds an earlier start, then ``steps`` progress lines and blank ones and the trainer's
    last words; the offset this start begins at."""
    folder = RunFolder(tmp_path / "run")
    folder.log.parent.mkdir(parents=True)
    with folder.log.open("wb") as log:
        log.write(b"the earlier start's line\n" * 40)
        start = log.tell()
        log.write(LINE * steps + b"\n\n" + "dbtui trainer: the disk is full ✗\n".encode() + b"cut off")
    return folder, start


def _expected(folder: RunFolder, start: int, lines: int = 15) -> list[str]:
    return folder.log.read_bytes()[start:].decode(errors="replace").splitlines()[-lines:]


def test_a_long_logs_end_is_read_without_holding_the_log(tmp_path: Path) -> None:
    folder, start = _log(tmp_path, 40 * 2**20 // len(LINE))
    tracemalloc.start()
    try:
        tail = _log_tail(folder, start)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert tail == _expected(folder, start) and tail[-2] == "dbtui trainer: the disk is full ✗", tail
    assert peak < 8 * 2**20, f"{peak} bytes held to read the end of a 40 MB log"


@pytest.mark.parametrize("block", [1, 7, 100, 4096])
@pytest.mark.parametrize("steps", [0, 3, 200])
def test_the_last_lines_are_those_of_this_start_whole(tmp_path: Path, monkeypatch, block: int, steps: int) -> None:
    """Blocks shorter than a line or ending mid-line; a start with fewer lines than asked shows none of the earlier."""
    folder, start = _log(tmp_path, steps)
    monkeypatch.setattr("engine.events.LOG_BLOCK", block)
    for lines in (1, 15, 500):
        assert _log_tail(folder, start, lines) == _expected(folder, start, lines), (block, steps, lines)
    assert _log_tail(folder, folder.log.stat().st_size) == []
