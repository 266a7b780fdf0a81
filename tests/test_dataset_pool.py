"""The dataset doctor's worker pool: Ctrl-C is the parent's to answer, and the work not reached is not waited for."""

from __future__ import annotations

import signal

import pytest

from engine.dataset import pool


def _interrupt(item: int) -> int:
    return item


def test_workers_leave_ctrl_c_to_the_parent_which_stops_without_waiting(monkeypatch) -> None:
    before = signal.getsignal(signal.SIGINT)
    try:
        pool._leave_interrupts_to_the_parent()
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)

    seen = []

    def interrupted(event) -> None:
        if event.kind == "phase_progress":
            seen.append(event.done)
            raise KeyboardInterrupt

    monkeypatch.setattr(pool, "MIN_FILES_FOR_POOL", 1)
    with pytest.raises(KeyboardInterrupt):
        pool.run_phase("check", _interrupt, list(range(2000)), emit=interrupted, workers=2)
    assert seen and seen[0] < 2000
